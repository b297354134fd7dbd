//! The command tree of each mode, resolution of typed (possibly abbreviated) words to a
//! command, and what Tab completion and `?` offer. Pure: the processes' commands, the
//! schema and the configuration come in a [`Context`].

use serde_json::Value;

use crate::line;
use crate::schema_walk::{Entry, Purpose, Schema};

/// The shell's two modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Show commands, process control.
    #[default]
    Operational,
    /// Editing the candidate configuration.
    Configure,
}

/// Commands the shell runs itself (not routed to a process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    ShowConfiguration,
    ShowRevisions,
    ShowProcesses,
    RestartProcess,
    Configure,
    Help,
    Exit,
}

/// Who answers an operational command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Builtin(Builtin),
    /// The process (by its `Describe` name) that declared it.
    Process(String),
}

/// One operational command: its words (`<ARG>` takes an argument) and one line of help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpCommand {
    pub words: Vec<String>,
    pub help: String,
    pub owner: Owner,
    /// Configuration path words may follow (`show configuration protocols static`).
    pub takes_config_path: bool,
}

impl OpCommand {
    fn builtin(words: &str, help: &str, b: Builtin) -> Self {
        OpCommand {
            words: words.split_whitespace().map(String::from).collect(),
            help: help.into(),
            owner: Owner::Builtin(b),
            takes_config_path: b == Builtin::ShowConfiguration,
        }
    }

    /// A command a process declared (its words come without the leading `show`).
    pub fn from_process(process: &str, words: &[String], help: &str) -> Self {
        OpCommand {
            words: std::iter::once("show".to_string())
                .chain(words.iter().cloned())
                .collect(),
            help: help.into(),
            owner: Owner::Process(process.into()),
            takes_config_path: false,
        }
    }
}

/// The commands the shell itself provides in operational mode.
pub fn builtin_commands() -> Vec<OpCommand> {
    use Builtin::*;
    vec![
        OpCommand::builtin("show", "Show information about the router", Help),
        OpCommand::builtin(
            "show configuration",
            "Running configuration (optionally a subtree)",
            ShowConfiguration,
        ),
        OpCommand::builtin(
            "show revisions",
            "Committed configuration revisions",
            ShowRevisions,
        ),
        OpCommand::builtin("restart", "Restart a process", Help),
        OpCommand::builtin(
            "restart process <P>",
            "Restart one process of the router",
            RestartProcess,
        ),
        OpCommand::builtin("configure", "Edit the configuration", Configure),
        OpCommand::builtin("help", "List the commands", Help),
        OpCommand::builtin("exit", "Leave the shell", Exit),
        OpCommand::builtin("quit", "Leave the shell", Exit),
    ]
}

/// `show processes` from `Routerd.ProcessStatus`, used only if no process declares it.
pub fn fallback_commands() -> Vec<OpCommand> {
    vec![OpCommand::builtin(
        "show processes",
        "Processes of the router and their state",
        Builtin::ShowProcesses,
    )]
}

/// The operational command list: built-ins, then what the processes declared, then the
/// fallbacks no process declared. [`resolve`] prefers earlier entries.
pub fn build_commands(declared: Vec<OpCommand>) -> Vec<OpCommand> {
    let mut out = builtin_commands();
    let fallbacks: Vec<OpCommand> = fallback_commands()
        .into_iter()
        .filter(|f| !declared.iter().any(|d| d.words == f.words))
        .collect();
    out.extend(declared);
    out.extend(fallbacks);
    out
}

/// Commands of configure mode, with help.
pub const CONFIG_COMMANDS: &[(&str, &str)] = &[
    ("set", "Set a value (or create a table) in the candidate"),
    (
        "delete",
        "Delete a subtree, leaf or list element from the candidate",
    ),
    ("show", "Show the candidate (optionally a subtree)"),
    ("compare", "Differences between running and candidate"),
    ("commit", "Validate the candidate and make it running"),
    ("rollback", "Make an earlier revision running again"),
    ("load", "Replace the candidate by a router TOML file"),
    ("discard", "Throw the candidate away (back to running)"),
    ("validate", "Check the candidate without committing"),
    ("run", "Run an operational command"),
    ("help", "List the commands"),
    ("exit", "Leave configure mode"),
    ("quit", "Leave configure mode"),
];

/// Everything completion and help look at.
#[derive(Debug, Clone)]
pub struct Context {
    pub mode: Mode,
    /// Operational commands: built-ins and those the processes declared.
    pub commands: Vec<OpCommand>,
    pub schema: Schema,
    /// The configuration the commands act on, as JSON (candidate in configure mode,
    /// running in operational mode).
    pub config: Value,
    /// Names of the router's processes (for `restart process`).
    pub processes: Vec<String>,
}

impl Context {
    /// A context with only the built-in commands and schema (nothing discovered yet).
    pub fn builtin(mode: Mode) -> Self {
        Context {
            mode,
            commands: build_commands(Vec::new()),
            schema: Schema::builtin(),
            config: Value::Object(Default::default()),
            processes: Vec::new(),
        }
    }
}

/// Why typed words do not name an operational command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    Unknown { typed: String, expected: String },
    Ambiguous { typed: String, candidates: String },
    Incomplete { typed: String, next: String },
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::Unknown { typed, expected } if expected.is_empty() => {
                write!(f, "unknown command \"{typed}\"")
            }
            ResolveError::Unknown { typed, expected } => {
                write!(
                    f,
                    "unknown command \"{typed}\" (expected one of: {expected})"
                )
            }
            ResolveError::Ambiguous { typed, candidates } => {
                write!(f, "ambiguous \"{typed}\" (could be: {candidates})")
            }
            ResolveError::Incomplete { typed, next } => {
                write!(f, "incomplete command \"{typed}\" (next: {next})")
            }
        }
    }
}

impl std::error::Error for ResolveError {}

/// Keeps the first of equal strings, in order.
fn dedup_keep_order(v: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|w| seen.insert(w.clone()));
}

fn is_arg(word: &str) -> bool {
    word.starts_with('<')
}

/// A resolved operational command: which one, the words with abbreviations expanded, and
/// how many of them belong to the command (the rest is a configuration path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved<'a> {
    pub command: &'a OpCommand,
    pub words: Vec<String>,
}

/// Finds the command the words name. At each position an exact keyword wins, then an
/// unambiguous abbreviation of a keyword, then an argument slot.
pub fn resolve<'a>(
    commands: &'a [OpCommand],
    words: &[String],
) -> Result<Resolved<'a>, ResolveError> {
    let mut live: Vec<&OpCommand> = commands.iter().collect();
    let mut expanded = Vec::with_capacity(words.len());
    // A command that takes a configuration path and matched completely, with the index
    // where its path words start.
    let mut with_path: Option<(&OpCommand, usize)> = None;
    for (i, word) in words.iter().enumerate() {
        if with_path.is_none() {
            with_path = live
                .iter()
                .find(|c| c.takes_config_path && c.words.len() == i)
                .map(|c| (*c, i));
        }
        let at_i: Vec<&OpCommand> = live.iter().copied().filter(|c| c.words.len() > i).collect();
        let mut keywords: Vec<&str> = at_i
            .iter()
            .map(|c| c.words[i].as_str())
            .filter(|w| !is_arg(w))
            .collect();
        keywords.sort_unstable();
        keywords.dedup();
        let typed = || words[..=i].join(" ");
        let chosen: Option<String> = if keywords.contains(&word.as_str()) {
            Some(word.clone())
        } else {
            let prefixed: Vec<&str> = keywords
                .iter()
                .copied()
                .filter(|k| k.starts_with(word.as_str()))
                .collect();
            match prefixed.as_slice() {
                [one] => Some(one.to_string()),
                [] => None,
                many => {
                    if at_i.iter().any(|c| is_arg(&c.words[i])) {
                        None
                    } else {
                        return Err(ResolveError::Ambiguous {
                            typed: typed(),
                            candidates: many.join(", "),
                        });
                    }
                }
            }
        };
        live = match &chosen {
            Some(k) => at_i.into_iter().filter(|c| &c.words[i] == k).collect(),
            None => at_i.into_iter().filter(|c| is_arg(&c.words[i])).collect(),
        };
        if live.is_empty() {
            if let Some((cmd, start)) = with_path {
                let mut w = expanded[..start].to_vec();
                w.extend_from_slice(&words[start..]);
                return Ok(Resolved {
                    command: cmd,
                    words: w,
                });
            }
            let mut expected: Vec<String> = commands
                .iter()
                .filter(|c| {
                    c.words.len() > i
                        && c.words[..i]
                            .iter()
                            .zip(&expanded)
                            .all(|(a, b)| a == b || is_arg(a))
                })
                .map(|c| c.words[i].clone())
                .collect();
            dedup_keep_order(&mut expected);
            return Err(ResolveError::Unknown {
                typed: typed(),
                expected: expected.join(", "),
            });
        }
        expanded.push(chosen.unwrap_or_else(|| word.clone()));
    }
    if let Some(cmd) = live.iter().find(|c| c.words.len() == words.len()) {
        return Ok(Resolved {
            command: cmd,
            words: expanded,
        });
    }
    let mut next: Vec<String> = live
        .iter()
        .filter_map(|c| c.words.get(words.len()).cloned())
        .collect();
    dedup_keep_order(&mut next);
    if words.is_empty() {
        return Err(ResolveError::Incomplete {
            typed: String::new(),
            next: next.join(", "),
        });
    }
    Err(ResolveError::Incomplete {
        typed: expanded.join(" "),
        next: next.join(", "),
    })
}

/// Entries that may follow `words` in operational mode.
fn op_entries(ctx: &Context, words: &[String]) -> Vec<Entry> {
    // After `show configuration`, the schema takes over.
    if let Ok(r) = resolve(&ctx.commands, words) {
        if r.command.takes_config_path {
            let n = r.command.words.len();
            let mut out = ctx
                .schema
                .next_entries(&ctx.config, &r.words[n..], Purpose::Show);
            out.push(Entry::new("<Enter>", "Execute this command"));
            return out;
        }
    }
    let mut out: Vec<Entry> = Vec::new();
    let mut complete = false;
    for c in &ctx.commands {
        if c.words.len() < words.len() {
            continue;
        }
        // Earlier words may be abbreviations.
        let prefix_ok = c
            .words
            .iter()
            .zip(words)
            .all(|(cw, w)| is_arg(cw) || cw.starts_with(w.as_str()));
        if !prefix_ok {
            continue;
        }
        if c.words.len() == words.len() {
            // `show` and `restart` alone only print help: not a command to execute.
            let prefix_only =
                matches!(c.owner, Owner::Builtin(Builtin::Help)) && c.words[0] != "help";
            complete |= !prefix_only;
            continue;
        }
        let next = &c.words[words.len()];
        if is_arg(next) {
            let prev = words.last().map(String::as_str).unwrap_or("");
            for v in arg_values(ctx, prev) {
                push_entry(&mut out, Entry::new(v, ""), false);
            }
        }
        // A keyword's help is that of the command it ends, else of the first through it.
        let ends_here = c.words.len() == words.len() + 1;
        push_entry(
            &mut out,
            Entry::new(next.clone(), c.help.clone()),
            ends_here,
        );
    }
    if complete && !words.is_empty() {
        out.push(Entry::new("<Enter>", "Execute this command"));
    }
    out
}

/// Values offered for an argument slot, by the keyword before it.
fn arg_values(ctx: &Context, previous: &str) -> Vec<String> {
    match previous {
        "process" => ctx.processes.clone(),
        "protocol" => std::iter::once("connected".to_string())
            .chain(
                ctx.processes
                    .iter()
                    .filter(|p| !matches!(p.as_str(), "fea" | "rib" | "routerd"))
                    .cloned(),
            )
            .collect(),
        _ => Vec::new(),
    }
}

/// Adds an entry, or improves the help of one already there: `preferred` help (from the
/// command the word ends) replaces other help.
fn push_entry(out: &mut Vec<Entry>, e: Entry, preferred: bool) {
    match out.iter_mut().find(|x| x.word == e.word) {
        Some(x) => {
            if x.help.is_empty() || preferred {
                x.help = e.help;
            }
        }
        None => out.push(e),
    }
}

fn config_command(word: &str) -> Option<&'static str> {
    if let Some((c, _)) = CONFIG_COMMANDS.iter().find(|(c, _)| *c == word) {
        return Some(c);
    }
    let matches: Vec<&str> = CONFIG_COMMANDS
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| c.starts_with(word))
        .collect();
    match matches.as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

/// Resolves the first word of a configure-mode line (exact or unambiguous abbreviation).
pub fn resolve_config_command(word: &str) -> Result<&'static str, ResolveError> {
    config_command(word).ok_or_else(|| {
        let matches: Vec<&str> = CONFIG_COMMANDS
            .iter()
            .map(|(c, _)| *c)
            .filter(|c| c.starts_with(word))
            .collect();
        if matches.len() > 1 {
            ResolveError::Ambiguous {
                typed: word.into(),
                candidates: matches.join(", "),
            }
        } else {
            ResolveError::Unknown {
                typed: word.into(),
                expected: CONFIG_COMMANDS
                    .iter()
                    .map(|(c, _)| *c)
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        }
    })
}

/// Entries that may follow `words` in configure mode.
fn config_entries(ctx: &Context, words: &[String]) -> Vec<Entry> {
    let Some(first) = words.first() else {
        return CONFIG_COMMANDS
            .iter()
            .map(|(c, h)| Entry::new(*c, *h))
            .collect();
    };
    let Some(cmd) = config_command(first) else {
        return Vec::new();
    };
    let rest = &words[1..];
    match cmd {
        "set" => ctx.schema.next_entries(&ctx.config, rest, Purpose::Set),
        "delete" => ctx.schema.next_entries(&ctx.config, rest, Purpose::Delete),
        "show" => {
            let mut out = ctx.schema.next_entries(&ctx.config, rest, Purpose::Show);
            out.push(Entry::new("<Enter>", "Execute this command"));
            out
        }
        "commit" => match rest.len() {
            0 => vec![
                Entry::new("comment", "A comment stored with the revision"),
                Entry::new("<Enter>", "Execute this command"),
            ],
            1 => vec![Entry::new(
                "<TEXT>",
                "The comment (quote it if it has spaces)",
            )],
            _ => Vec::new(),
        },
        "rollback" if rest.is_empty() => {
            vec![Entry::new(
                "<N>",
                "Revision number (see `run show revisions`)",
            )]
        }
        "run" => op_entries(ctx, rest),
        _ if rest.is_empty() => vec![Entry::new("<Enter>", "Execute this command")],
        _ => Vec::new(),
    }
}

/// Everything that may come next after the complete words `words`.
pub fn next_entries(ctx: &Context, words: &[String]) -> Vec<Entry> {
    match ctx.mode {
        Mode::Operational => op_entries(ctx, words),
        Mode::Configure => config_entries(ctx, words),
    }
}

/// Splits the text before the cursor into complete words and the partial word.
fn words_and_partial(before: &str) -> (Vec<String>, String) {
    let split = line::split(before);
    let mut words: Vec<String> = split.tokens.iter().map(|t| t.text.clone()).collect();
    let ends_in_word = split
        .tokens
        .last()
        .is_some_and(|t| t.end == before.len() && t.text != "|");
    let partial = if ends_in_word {
        words.pop().unwrap_or_default()
    } else {
        String::new()
    };
    (words, partial)
}

/// Completions for the word under the cursor: literal words only (no placeholders), in
/// the order the tree gives them.
pub fn complete(line: &str, pos: usize, ctx: &Context) -> Vec<String> {
    let pos = pos.min(line.len());
    let before = &line[..pos];
    if line::split(before).tokens.iter().any(|t| t.text == "|") {
        return if "json".starts_with(line::word_at(line, pos).1.as_str()) {
            vec!["json".into()]
        } else {
            Vec::new()
        };
    }
    let (words, partial) = words_and_partial(before);
    let mut out: Vec<String> = next_entries(ctx, &words)
        .into_iter()
        .filter(|e| !e.is_placeholder() && e.word.starts_with(partial.as_str()))
        .map(|e| e.word)
        .collect();
    dedup_keep_order(&mut out);
    out
}

/// The `?` help for the text before the cursor: a list of possible next words (or of words
/// starting with the partial word) with one line of help each.
pub fn help_text(before: &str, ctx: &Context) -> String {
    let (words, partial) = words_and_partial(before);
    let entries = if let Some(bar) = words.iter().position(|w| w == "|") {
        if words.len() == bar + 1 {
            vec![Entry::new("json", "Print the answer as JSON")]
        } else {
            Vec::new()
        }
    } else {
        next_entries(ctx, &words)
    };
    let entries: Vec<Entry> = entries
        .into_iter()
        .filter(|e| partial.is_empty() || e.is_placeholder() || e.word.starts_with(&partial))
        .collect();
    if entries.is_empty() {
        return "No completions here.\n".into();
    }
    let width = entries
        .iter()
        .map(|e| e.word.len())
        .max()
        .unwrap_or(0)
        .max(8);
    let mut out = String::from("Possible completions:\n");
    for e in entries {
        if e.help.is_empty() {
            out.push_str(&format!("  {}\n", e.word));
        } else {
            out.push_str(&format!("  {:width$}  {}\n", e.word, e.help));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn w(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    fn ctx(mode: Mode) -> Context {
        let mut c = Context::builtin(mode);
        let mut declared_cmds = Vec::new();
        // What fea, rib, static and routerd declare.
        let declared: &[(&str, &str, &str)] = &[
            ("fea", "interfaces", "Interfaces and addresses"),
            ("fea", "fib", "Forwarding table"),
            ("fea", "fib <PREFIX>", "One FIB entry"),
            ("fea", "fea", "Backend status"),
            ("rib", "route", "All routes"),
            (
                "rib",
                "route <ADDR|PREFIX>",
                "Longest match or exact prefix",
            ),
            ("rib", "route protocol <P>", "Routes of one protocol"),
            ("rib", "route summary", "Route counts"),
            ("rib", "route nexthops", "Watched next hops"),
            ("static", "static routes", "Configured static routes"),
            ("routerd", "processes", "Process state"),
        ];
        for (p, words, help) in declared {
            declared_cmds.push(OpCommand::from_process(p, &w(words), help));
        }
        c.commands = build_commands(declared_cmds);
        c.processes = vec![
            "fea".into(),
            "rib".into(),
            "routerd".into(),
            "static".into(),
        ];
        c.config =
            json!({"protocols": {"static": {"route": {"10.9.0.0/16": {"via": ["10.0.12.2"]}}}}});
        c
    }

    #[test]
    fn resolves_commands_keywords_before_arguments() {
        let c = ctx(Mode::Operational);
        let r = resolve(&c.commands, &w("show route summary")).unwrap();
        assert_eq!(r.command.owner, Owner::Process("rib".into()));
        assert_eq!(r.command.words, w("show route summary"));
        let r = resolve(&c.commands, &w("show route 10.0.0.0/8")).unwrap();
        assert_eq!(r.command.words, w("show route <ADDR|PREFIX>"));
        assert_eq!(r.words, w("show route 10.0.0.0/8"));
        let r = resolve(&c.commands, &w("sh ro prot static")).unwrap();
        assert_eq!(r.words, w("show route protocol static"));
        // routerd declared `show processes`: the built-in fallback is left out.
        let r = resolve(&c.commands, &w("show processes")).unwrap();
        assert_eq!(r.command.owner, Owner::Process("routerd".into()));
        let bare = Context::builtin(Mode::Operational);
        let r = resolve(&bare.commands, &w("show processes")).unwrap();
        assert_eq!(r.command.owner, Owner::Builtin(Builtin::ShowProcesses));
    }

    #[test]
    fn resolve_errors_say_what_was_expected() {
        let c = ctx(Mode::Operational);
        let e = resolve(&c.commands, &w("show bogus"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("unknown command \"show bogus\" (expected one of: "),
            "{e}"
        );
        assert!(e.contains("route"), "{e}");
        let e = resolve(&c.commands, &w("show static")).unwrap_err();
        assert_eq!(
            e,
            ResolveError::Incomplete {
                typed: "show static".into(),
                next: "routes".into()
            }
        );
        let e = resolve(&c.commands, &w("show r")).unwrap_err();
        assert!(matches!(e, ResolveError::Ambiguous { .. }), "{e:?}");
        assert!(resolve(&c.commands, &w("show route summary extra")).is_err());
    }

    #[test]
    fn show_configuration_takes_a_path() {
        let c = ctx(Mode::Operational);
        let r = resolve(&c.commands, &w("show configuration protocols static")).unwrap();
        assert_eq!(r.command.owner, Owner::Builtin(Builtin::ShowConfiguration));
        assert_eq!(r.words, w("show configuration protocols static"));
        let r = resolve(&c.commands, &w("show conf")).unwrap();
        assert_eq!(r.words, w("show configuration"));
    }

    #[test]
    fn completes_first_word_per_mode() {
        let op = ctx(Mode::Operational);
        assert_eq!(
            complete("", 0, &op),
            ["show", "restart", "configure", "help", "exit", "quit"]
        );
        assert_eq!(complete("con", 3, &op), ["configure"]);
        let conf = ctx(Mode::Configure);
        assert_eq!(complete("co", 2, &conf), ["compare", "commit"]);
        assert_eq!(complete("se", 2, &conf), ["set"]);
    }

    #[test]
    fn completes_show_commands_from_the_processes() {
        let c = ctx(Mode::Operational);
        let show = complete("show ", 5, &c);
        for want in [
            "configuration",
            "revisions",
            "processes",
            "interfaces",
            "fib",
            "fea",
            "route",
            "static",
        ] {
            assert!(
                show.contains(&want.to_string()),
                "{want} missing from {show:?}"
            );
        }
        assert_eq!(complete("show ro", 7, &c), ["route"]);
        assert_eq!(
            complete("show route ", 11, &c),
            ["protocol", "summary", "nexthops"]
        );
        assert_eq!(
            complete("show route protocol ", 20, &c),
            ["connected", "static"]
        );
        assert_eq!(complete("restart process r", 17, &c), ["rib", "routerd"]);
        assert_eq!(complete("show route | j", 14, &c), ["json"]);
    }

    #[test]
    fn completes_config_paths_from_schema_and_candidate() {
        let c = ctx(Mode::Configure);
        assert_eq!(complete("set prot", 8, &c), ["protocols"]);
        assert_eq!(
            complete("set protocols static route ", 27, &c),
            ["10.9.0.0/16"]
        );
        let line = "set protocols static route 10.9.0.0/16 ";
        let got = complete(line, line.len(), &c);
        assert_eq!(
            got,
            ["action", "distance", "interface", "metric", "tag", "via"]
        );
        let line = "set protocols static route 10.9.0.0/16 action b";
        assert_eq!(complete(line, line.len(), &c), ["blackhole"]);
        let line = "delete protocols static route 10.9.0.0/16 via ";
        assert_eq!(complete(line, line.len(), &c), ["10.0.12.2"]);
        // `run` completes operational commands.
        assert_eq!(complete("run show ro", 11, &c), ["route"]);
        // Operational `show configuration` completes config paths too.
        let op = ctx(Mode::Operational);
        assert_eq!(complete("show configuration pro", 22, &op), ["protocols"]);
    }

    #[test]
    fn completion_uses_the_text_before_the_cursor() {
        let c = ctx(Mode::Operational);
        // Cursor after "sh" in "sh route": completes the first word.
        assert_eq!(complete("sh route", 2, &c), ["show"]);
    }

    #[test]
    fn help_lists_next_words_with_help() {
        let c = ctx(Mode::Operational);
        let h = help_text("show route ", &c);
        assert!(h.starts_with("Possible completions:\n"), "{h}");
        assert!(h.contains("  summary"), "{h}");
        assert!(h.contains("Route counts"), "{h}");
        assert!(h.contains("<ADDR|PREFIX>"), "{h}");
        assert!(h.contains("<Enter>"), "{h}");
        assert!(h.contains("protocol       Routes of one protocol"), "{h}");
        // A partial word narrows the list.
        let h = help_text("show ro", &c);
        assert!(h.contains("route"), "{h}");
        assert!(!h.contains("interfaces"), "{h}");

        let h = help_text("show route | ", &c);
        assert!(h.contains("  json      Print the answer as JSON"), "{h}");
        let conf = ctx(Mode::Configure);
        let h = help_text("set protocols static route 10.9.0.0/16 action ", &conf);
        assert!(h.contains("blackhole  Drop silently."), "{h}");
        let h = help_text("", &conf);
        assert!(h.contains("commit"), "{h}");
        assert!(
            h.contains("Validate the candidate and make it running"),
            "{h}"
        );
    }
}
