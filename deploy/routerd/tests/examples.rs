//! deploy/examples/*.toml are valid, router.toml shows every key of the built-in schema and
//! `<protocol>.toml` every key of each protocol routerd registers (so a key added to a
//! schema without being documented fails this test).

use std::path::PathBuf;

use serde_json::Value as Json;

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

#[test]
fn every_example_validates() {
    let mut seen = 0;
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Err(errs) = oxr_config::parse_and_validate_with(&text, &oxr_routerd::registry())
            {
                panic!("{}: {errs:#?}", path.display());
            }
            seen += 1;
        }
    }
    assert!(
        seen >= 4,
        "minimal, static-routes, router and ospf examples"
    );
}

/// Every leaf path of the schema; `*` stands for a key of a map (interface name, prefix).
fn leaf_paths(root: &Json, node: &Json, prefix: &str, out: &mut Vec<String>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    let mut table = false;
    for b in branches(root, node) {
        if let Some(props) = b.get("properties").and_then(Json::as_object) {
            table = true;
            for (k, v) in props {
                leaf_paths(root, v, &join(k), out);
            }
        }
        if let Some(add) = b.get("additionalProperties").filter(|a| a.is_object()) {
            table = true;
            leaf_paths(root, add, &join("*"), out);
        }
    }
    if !table {
        out.push(prefix.to_string());
    }
}

/// A node's alternatives: `$ref` resolved, `anyOf`/`oneOf` expanded, `null` dropped.
fn branches<'a>(root: &'a Json, node: &'a Json) -> Vec<&'a Json> {
    let node = match node.get("$ref").and_then(Json::as_str) {
        Some(r) => root
            .pointer(r.trim_start_matches('#'))
            .expect("ref resolves"),
        None => node,
    };
    let mut out = Vec::new();
    for key in ["anyOf", "oneOf"] {
        for b in node.get(key).and_then(Json::as_array).into_iter().flatten() {
            out.extend(branches(root, b));
        }
    }
    if out.is_empty() && node.get("type").and_then(Json::as_str) != Some("null") {
        out.push(node);
    }
    out
}

fn present(table: &toml::Table, segs: &[&str]) -> bool {
    let Some((first, rest)) = segs.split_first() else {
        return true;
    };
    let candidates: Vec<&toml::Value> = if *first == "*" {
        table.values().collect()
    } else {
        table.get(*first).into_iter().collect()
    };
    candidates.into_iter().any(|v| match (v, rest.is_empty()) {
        (_, true) => true,
        (toml::Value::Table(t), false) => present(t, rest),
        _ => false,
    })
}

fn lacking(paths: &[String], file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(examples_dir().join(file)).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    paths
        .iter()
        .filter(|p| !present(&doc, &p.split('.').collect::<Vec<_>>()))
        .cloned()
        .collect()
}

#[test]
fn router_example_shows_every_key() {
    let registry = oxr_routerd::registry();
    let schema = oxr_config::json_schema_with(&registry);
    let mut paths = Vec::new();
    leaf_paths(&schema, &schema, "", &mut paths);
    paths.sort();
    paths.dedup();
    assert!(
        paths.contains(&"protocols.static.route.*.via".to_string()),
        "{paths:#?}"
    );
    assert!(paths.contains(&"fea.dataplane".to_string()), "{paths:#?}");
    assert!(
        paths.contains(&"protocols.ospf.throttle.min-ls-arrival".to_string()),
        "{paths:#?}"
    );
    let registered = registry.registered();
    let of = |name: &str| -> Vec<String> {
        let prefix = format!("protocols.{name}.");
        paths
            .iter()
            .filter(|p| p.starts_with(&prefix))
            .cloned()
            .collect()
    };
    // Registered protocols are documented in their own example, the rest in router.toml.
    let builtin: Vec<String> = paths
        .iter()
        .filter(|p| {
            !registered
                .iter()
                .any(|name| p.starts_with(&format!("protocols.{name}.")))
        })
        .cloned()
        .collect();
    let missing = lacking(&builtin, "router.toml");
    assert!(missing.is_empty(), "router.toml lacks {missing:?}");
    let missing = lacking(&of("static"), "static-routes.toml");
    assert!(missing.is_empty(), "static-routes.toml lacks {missing:?}");
    for name in registered {
        let keys = of(name);
        assert!(keys.len() > 1, "{name}: {keys:?}");
        let file = format!("{name}.toml");
        let missing = lacking(&keys, &file);
        assert!(missing.is_empty(), "{file} lacks {missing:?}");
    }
}
