//! The interactive loop: rustyline with history, Tab completion from [`crate::complete`],
//! and `?`, which prints what may come next and gives the line back unchanged.
//!
//! `?` is bound to a key handler that records the cursor and accepts the line; the loop
//! sees the record, prints the help, and re-presents the same line with the cursor where it
//! was. (Printing from inside the handler would fight rustyline's redraw.)

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{
    Cmd, CompletionType, ConditionalEventHandler, Config, Editor, Event, EventContext,
    EventHandler, Helper, KeyCode, KeyEvent, Modifiers, RepeatCount,
};

use crate::complete;
use crate::line;
use crate::shell::{run_command, Context};

/// Completion for rustyline, over a snapshot the loop refreshes after each command.
struct ShellHelper {
    data: Arc<Mutex<complete::Context>>,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        let (start, _) = line::word_at(line, pos);
        let words = complete::complete(line, pos, &data);
        let unique = words.len() == 1;
        let pairs = words
            .into_iter()
            .map(|w| Pair {
                replacement: if unique { format!("{w} ") } else { w.clone() },
                display: w,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Helper for ShellHelper {}

/// `?`: remember where the cursor was and hand the line back to the loop.
struct HelpKey {
    pending: Arc<Mutex<Option<usize>>>,
}

impl ConditionalEventHandler for HelpKey {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext) -> Option<Cmd> {
        let before = &ctx.line()[..ctx.pos()];
        if line::split(before).open_quote {
            return None; // a literal `?` inside a quoted word
        }
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(ctx.pos());
        Some(Cmd::AcceptLine)
    }
}

/// `~/.oxrsh_history`, if there is a home.
pub fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".oxrsh_history"))
}

/// Runs the shell until `exit`, `quit` or end of input. Returns how many commands failed
/// (for a script piped into the shell).
pub fn interactive(rt: &tokio::runtime::Runtime, ctx: &mut Context) -> anyhow::Result<usize> {
    let mut failed = 0;
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .history_ignore_dups(true)?
        .max_history_size(2000)?
        .build();
    let mut rl: Editor<ShellHelper, FileHistory> = Editor::with_config(config)?;
    rt.block_on(ctx.ensure_ready());
    let data = Arc::new(Mutex::new(ctx.completion_context()));
    rl.set_helper(Some(ShellHelper { data: data.clone() }));
    let pending = Arc::new(Mutex::new(None));
    rl.bind_sequence(
        KeyEvent(KeyCode::Char('?'), Modifiers::NONE),
        EventHandler::Conditional(Box::new(HelpKey {
            pending: pending.clone(),
        })),
    );
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    let mut initial: Option<(String, String)> = None;
    loop {
        let prompt = ctx.prompt();
        let read = match initial.take() {
            Some((left, right)) => rl.readline_with_initial(&prompt, (&left, &right)),
            None => rl.readline(&prompt),
        };
        let line = match read {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let help_at = pending.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(pos) = help_at {
            let pos = pos.min(line.len());
            let snapshot = data.lock().unwrap_or_else(|e| e.into_inner()).clone();
            print!("{}", complete::help_text(&line[..pos], &snapshot));
            initial = Some((line[..pos].to_string(), line[pos..].to_string()));
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let _ = rl.add_history_entry(line.as_str());
        match rt.block_on(run_command(ctx, &line)) {
            Ok(out) => print_output(&out),
            Err(e) => {
                failed += 1;
                eprintln!("{e}");
            }
        }
        if ctx.should_quit() {
            break;
        }
        rt.block_on(ctx.refresh());
        *data.lock().unwrap_or_else(|e| e.into_inner()) = ctx.completion_context();
        if let Some(h) = &history {
            let _ = rl.save_history(h);
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    Ok(failed)
}

/// Prints a command's output, ending it with a newline if it has none.
pub fn print_output(out: &str) {
    if out.is_empty() {
        return;
    }
    if out.ends_with('\n') {
        print!("{out}");
    } else {
        println!("{out}");
    }
}
