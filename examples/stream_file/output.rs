//! What the user sees: a progress bar with the partial transcript on stderr and final lines on
//! stdout, or (with `--json`) one JSON object per line on stdout and nothing else there.
//!
//! Human mode: transcript lines go to stdout (so they can be piped), everything else (the bar,
//! connection and clock notes, warnings) to stderr. The bar is drawn only when stderr is a
//! terminal.

use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

/// `mm:ss.cc`, or `h:mm:ss.cc` from one hour on. Negative and non-finite times print as zero.
pub fn fmt_time(seconds: f64) -> String {
    let centis = if seconds.is_finite() && seconds > 0.0 {
        (seconds * 100.0).round() as u64
    } else {
        0
    };
    let (cs, total_secs) = (centis % 100, centis / 100);
    let (s, total_mins) = (total_secs % 60, total_secs / 60);
    let (m, h) = (total_mins % 60, total_mins / 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}.{cs:02}")
    } else {
        format!("{m:02}:{s:02}.{cs:02}")
    }
}

/// `[00:01.20-00:02.85] text`.
pub fn fmt_span(start: f64, end: f64, text: &str) -> String {
    format!("[{}-{}] {}", fmt_time(start), fmt_time(end), text)
}

/// The terminal (or JSON) output of one run.
pub struct Out {
    json: bool,
    bar: Option<ProgressBar>,
    total: Option<Duration>,
}

impl Out {
    /// `unit` names what the bar counts ("audio", "video").
    pub fn new(json: bool, total: Option<Duration>, unit: &'static str) -> Out {
        let bar = (!json).then(|| {
            let bar = match total {
                Some(total) => ProgressBar::with_draw_target(
                    Some(total.as_millis() as u64),
                    ProgressDrawTarget::stderr_with_hz(10),
                ),
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10)),
            };
            let template = if total.is_some() {
                "{spinner} [{bar:24}] {prefix} {wide_msg}"
            } else {
                "{spinner} {prefix} {wide_msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(format!("{unit} {}", progress_text(Duration::ZERO, total)));
            bar
        });
        Out { json, bar, total }
    }

    /// Whether output is JSON lines.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// A note for the user (connection, clock, warnings). JSON mode: a `{"type":"note"}` line.
    pub fn note(&self, kind: &str, message: &str, extra: Value) {
        if self.json {
            let mut object = json!({ "type": kind, "message": message });
            if let (Some(target), Value::Object(extra)) = (object.as_object_mut(), extra) {
                target.extend(extra);
            }
            self.json_line(&object);
        } else {
            self.stderr_line(message);
        }
    }

    /// One JSON object on its own line on stdout (JSON mode only).
    pub fn json_line(&self, value: &Value) {
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{value}");
            let _ = out.flush();
        }
    }

    /// A line on stdout, above the bar (human mode).
    pub fn stdout_line(&self, line: &str) {
        if self.json {
            return;
        }
        let print = || {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        };
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    /// A line on stderr, above the bar.
    pub fn stderr_line(&self, line: &str) {
        let print = || {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{line}");
        };
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    /// Text shown after the bar (the partial transcript), replaced on every call.
    pub fn partial(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_owned());
        }
    }

    /// How much media has been sent.
    pub fn progress(&self, sent: Duration, unit: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(sent.as_millis() as u64);
            bar.set_prefix(format!("{unit} {}", progress_text(sent, self.total)));
            bar.tick();
        }
    }

    /// Removes the bar (before the last lines are printed).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        self.finish();
    }
}

fn progress_text(sent: Duration, total: Option<Duration>) -> String {
    match total {
        Some(total) => format!(
            "{} / {}",
            fmt_time(sent.as_secs_f64()),
            fmt_time(total.as_secs_f64())
        ),
        None => fmt_time(sent.as_secs_f64()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_minutes_seconds_and_centiseconds() {
        assert_eq!(fmt_time(0.0), "00:00.00");
        assert_eq!(fmt_time(1.2), "00:01.20");
        assert_eq!(fmt_time(2.854), "00:02.85");
        assert_eq!(fmt_time(2.855_1), "00:02.86");
        assert_eq!(fmt_time(59.999), "01:00.00");
        assert_eq!(fmt_time(754.5), "12:34.50");
        assert_eq!(fmt_time(3_723.04), "1:02:03.04");
        assert_eq!(fmt_time(-1.0), "00:00.00");
        assert_eq!(fmt_time(f64::NAN), "00:00.00");
    }

    #[test]
    fn spans_are_bracketed() {
        assert_eq!(
            fmt_span(1.2, 2.85, "hello world"),
            "[00:01.20-00:02.85] hello world"
        );
    }

    #[test]
    fn progress_reads_sent_over_total() {
        assert_eq!(
            progress_text(
                Duration::from_millis(1_200),
                Some(Duration::from_millis(6_704))
            ),
            "00:01.20 / 00:06.70"
        );
        assert_eq!(progress_text(Duration::from_millis(500), None), "00:00.50");
    }
}
