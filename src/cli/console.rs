//! What a person reads on a terminal: live progress lines, and text from
//! outside (reasons, actors, Azure's messages, script output) with its
//! control characters escaped, so that it can neither move the cursor, clear
//! the screen, nor forge a line.
use crate::engine::progress::{Progress, ProgressEvent};
use std::borrow::Cow;
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

/// `s` with every control character (newlines, escape sequences) written
/// as an escape (`\n`, `\u{1b}`).
pub fn esc(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Prints one line per event to stderr, with the time since the run began.
pub struct Console {
    started: Instant,
    out: Mutex<()>,
}

impl Default for Console {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            out: Mutex::new(()),
        }
    }
}

impl Progress for Console {
    fn event(&self, ev: ProgressEvent) {
        let t = self.started.elapsed().as_secs_f64();
        let line = match ev {
            ProgressEvent::StepStarted { step, attempt } => {
                if attempt > 1 {
                    format!("[{t:7.1}s] {step:<9} started (attempt {attempt})")
                } else {
                    format!("[{t:7.1}s] {step:<9} started")
                }
            }
            ProgressEvent::Azure { step, message } => format!("[{t:7.1}s] {step:<9} {message}"),
            ProgressEvent::StepDone {
                step,
                elapsed,
                summary,
            } => format!(
                "[{t:7.1}s] {step:<9} done in {:.1}s: {summary}",
                elapsed.as_secs_f64()
            ),
            ProgressEvent::StepFailed { step, error } => {
                format!("[{t:7.1}s] {step:<9} FAILED: {error}")
            }
            ProgressEvent::Note(n) => format!("[{t:7.1}s] {n}"),
        };
        let _guard = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(std::io::stderr(), "{}", esc(&line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_plain_text_is_kept() {
        assert_eq!(esc("retest after fixes"), "retest after fixes");
        assert_eq!(esc("a\nb"), "a\\nb");
        assert_eq!(esc("\u{1b}[2J"), "\\u{1b}[2J");
        assert_eq!(esc("naïve café"), "naïve café");
    }
}
