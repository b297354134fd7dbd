//! Splitting a command line into words: double quotes group words with spaces, `|` starts a
//! pipe (`show route | json`), a trailing `?` asks for help instead of running the line.

use std::fmt;

/// One word of a command line, with where it sits in the line (for completion and for the
/// raw text of dotted config paths and TOML values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The word with quotes removed and `\"` / `\\` unescaped.
    pub text: String,
    /// Byte offset of the first character in the line.
    pub start: usize,
    /// Byte offset just past the last character.
    pub end: usize,
}

impl Token {
    /// The word as typed, quotes included.
    pub fn raw<'a>(&self, line: &'a str) -> &'a str {
        &line[self.start..self.end]
    }
}

/// A line that cannot be split or whose pipe is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("unterminated quote")]
    UnterminatedQuote,
    #[error("unknown pipe \"| {0}\" (only \"| json\" is known)")]
    UnknownPipe(String),
    #[error("nothing after \"|\" (only \"| json\" is known)")]
    EmptyPipe,
}

/// The result of splitting a line; `open_quote` is set when the last word's quote was never
/// closed (an error when running, but normal while completing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    pub tokens: Vec<Token>,
    pub open_quote: bool,
}

/// Splits a line into words. `|` outside quotes is always a word of its own.
pub fn split(line: &str) -> Split {
    let mut tokens = Vec::new();
    let mut chars = line.char_indices().peekable();
    let mut open_quote = false;
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '|' {
            chars.next();
            tokens.push(Token {
                text: "|".into(),
                start,
                end: start + 1,
            });
            continue;
        }
        let mut text = String::new();
        let mut end = start;
        let mut in_quote = false;
        while let Some(&(i, c)) = chars.peek() {
            if !in_quote && (c.is_whitespace() || c == '|') {
                break;
            }
            chars.next();
            end = i + c.len_utf8();
            match c {
                '"' => in_quote = !in_quote,
                '\\' if in_quote => {
                    if let Some(&(j, next)) = chars.peek() {
                        chars.next();
                        end = j + next.len_utf8();
                        text.push(next);
                    }
                }
                _ => text.push(c),
            }
        }
        open_quote = in_quote;
        tokens.push(Token { text, start, end });
    }
    Split { tokens, open_quote }
}

/// What to do with a show command's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pipe {
    /// Print the table.
    #[default]
    Text,
    /// Print the JSON, pretty.
    Json,
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pipe::Text => f.write_str("text"),
            Pipe::Json => f.write_str("json"),
        }
    }
}

/// A line ready to run: its words and its pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub tokens: Vec<Token>,
    pub pipe: Pipe,
}

impl Parsed {
    /// The words, unquoted.
    pub fn words(&self) -> Vec<String> {
        self.tokens.iter().map(|t| t.text.clone()).collect()
    }
}

/// Splits a line to run it: quotes must be closed, and a pipe must be `| json`.
pub fn parse(line: &str) -> Result<Parsed, LineError> {
    let split = split(line);
    if split.open_quote {
        return Err(LineError::UnterminatedQuote);
    }
    let mut tokens = split.tokens;
    let Some(bar) = tokens
        .iter()
        .position(|t| t.text == "|" && t.end - t.start == 1)
    else {
        return Ok(Parsed {
            tokens,
            pipe: Pipe::Text,
        });
    };
    let after: Vec<String> = tokens[bar + 1..].iter().map(|t| t.text.clone()).collect();
    tokens.truncate(bar);
    match after.as_slice() {
        [] => Err(LineError::EmptyPipe),
        [w] if !w.is_empty() && "json".starts_with(w.as_str()) => Ok(Parsed {
            tokens,
            pipe: Pipe::Json,
        }),
        _ => Err(LineError::UnknownPipe(after.join(" "))),
    }
}

/// If the line ends with `?` outside quotes, the line before it (trailing spaces kept, so
/// `show ?` asks for the next word and `show ro?` for words starting with `ro`).
pub fn help_request(line: &str) -> Option<&str> {
    let trimmed = line.trim_end();
    let before = trimmed.strip_suffix('?')?;
    if split(before).open_quote {
        return None;
    }
    Some(before)
}

/// The word being completed at `pos`: its start offset and its text so far. A cursor after
/// a space starts a new, empty word.
pub fn word_at(line: &str, pos: usize) -> (usize, String) {
    let before = &line[..pos];
    let split = split(before);
    match split.tokens.last() {
        Some(t) if t.end == pos && t.text != "|" => (t.start, t.text.clone()),
        _ => (pos, String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        split(line).tokens.into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn splits_words_quotes_and_pipes() {
        assert_eq!(texts("  show   route "), ["show", "route"]);
        assert_eq!(
            texts(r#"commit comment "two words" x"#),
            ["commit", "comment", "two words", "x"]
        );
        assert_eq!(texts(r#"a "q\"uote""#), ["a", "q\"uote"]);
        assert_eq!(texts("show route|json"), ["show", "route", "|", "json"]);
        assert_eq!(texts(r#"a "x|y""#), ["a", "x|y"]);
    }

    #[test]
    fn raw_text_keeps_quotes_of_dotted_paths() {
        let line = r#"set protocols.static.route."10.9.0.0/16".via ["10.0.12.2"]"#;
        let s = split(line);
        assert_eq!(
            s.tokens[1].raw(line),
            r#"protocols.static.route."10.9.0.0/16".via"#
        );
        assert_eq!(&line[s.tokens[2].start..], r#"["10.0.12.2"]"#);
    }

    #[test]
    fn parses_json_pipe() {
        let p = parse("show route | json").unwrap();
        assert_eq!(p.words(), ["show", "route"]);
        assert_eq!(p.pipe, Pipe::Json);
        assert_eq!(parse("show route |j").unwrap().pipe, Pipe::Json);
        assert_eq!(parse("show route").unwrap().pipe, Pipe::Text);
        assert_eq!(
            parse("show route | count"),
            Err(LineError::UnknownPipe("count".into()))
        );
        assert_eq!(parse("show route |"), Err(LineError::EmptyPipe));
        assert_eq!(parse(r#"set a "b"#), Err(LineError::UnterminatedQuote));
        // A quoted bar is a word, not a pipe.
        assert_eq!(parse(r#"show "|" json"#).unwrap().pipe, Pipe::Text);
    }

    #[test]
    fn trailing_question_mark_is_a_help_request() {
        assert_eq!(help_request("show ?"), Some("show "));
        assert_eq!(help_request("show ro?"), Some("show ro"));
        assert_eq!(help_request("?"), Some(""));
        assert_eq!(help_request("show route"), None);
        assert_eq!(help_request(r#"commit comment "why?"#), None);
    }

    #[test]
    fn finds_the_word_under_the_cursor() {
        assert_eq!(word_at("show ro", 7), (5, "ro".into()));
        assert_eq!(word_at("show ", 5), (5, String::new()));
        assert_eq!(word_at("", 0), (0, String::new()));
        assert_eq!(word_at("show route", 4), (0, "show".into()));
    }
}
