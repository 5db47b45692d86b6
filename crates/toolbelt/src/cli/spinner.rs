//! The spinner `toolbelt chat` draws on stderr while a tool runs: which tool, for how long.
//! Only on a terminal (a pipe or a log file gets the plain `→ tool(…)` / `← …` lines alone),
//! redrawn in place with `\r` and erased before the next line is printed.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often the spinner is redrawn.
pub const TICK: Duration = Duration::from_millis(100);

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// One running tool's spinner.
pub struct Spinner {
    tool: String,
    started: Instant,
    ticks: usize,
    drawn: bool,
    tty: bool,
}

impl Spinner {
    pub fn start(tool: &str) -> Spinner {
        Spinner::new(tool, std::io::stderr().is_terminal())
    }

    fn new(tool: &str, tty: bool) -> Spinner {
        Spinner {
            tool: tool.to_string(),
            started: Instant::now(),
            ticks: 0,
            drawn: false,
            tty,
        }
    }

    /// Redraws it (one frame further) when stderr is a terminal.
    pub fn tick(&mut self) {
        if !self.tty {
            return;
        }
        let line = frame(&self.tool, self.ticks, self.started.elapsed());
        self.ticks += 1;
        let mut err = std::io::stderr();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        self.drawn = true;
    }

    /// Erases it, so the next line starts clean.
    pub fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The spinner's text at its `n`th frame, `elapsed` after the call began.
fn frame(tool: &str, n: usize, elapsed: Duration) -> String {
    format!(
        "{} {tool} running… {:.1} s",
        FRAMES[n % FRAMES.len()],
        elapsed.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_names_the_tool_and_its_time_and_the_glyph_turns() {
        assert_eq!(
            frame("tools__echo", 0, Duration::from_millis(1250)),
            "⠋ tools__echo running… 1.2 s"
        );
        assert_eq!(frame("t", 1, Duration::ZERO), "⠙ t running… 0.0 s");
        assert_eq!(
            frame("t", 10, Duration::ZERO),
            frame("t", 0, Duration::ZERO)
        );
    }

    #[test]
    fn off_a_terminal_nothing_is_drawn() {
        let mut s = Spinner::new("t", false);
        s.tick();
        assert!(!s.drawn && s.ticks == 0);
    }
}
