//! Progress of a long run (`cargo xtask test`, `bless`): boots done out of the total
//! with the ones running, as a live bar on a terminal (`indicatif`) or one plain
//! line per finished boot otherwise (CI logs), and each boot's duration for the
//! summary table at the end.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// One finished step.
#[derive(Clone, Debug)]
pub(crate) struct Timing {
    /// The case.
    pub(crate) name: String,
    /// How long it took.
    pub(crate) took: Duration,
    /// Whether it passed.
    pub(crate) ok: bool,
}

/// Progress of `total` steps of one kind (`boot`, `build`).
pub(crate) struct Progress {
    what: &'static str,
    total: usize,
    bar: Option<ProgressBar>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    running: Vec<(String, Instant)>,
    done: Vec<Timing>,
}

impl Progress {
    /// Progress of `total` steps called `what`.
    pub(crate) fn new(what: &'static str, total: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total as u64);
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {elapsed_precise} {wide_msg}",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(format!("xtask: {what}s"));
            bar.enable_steady_tick(Duration::from_millis(500));
            bar
        });
        Self {
            what,
            total,
            bar,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `name` starts.
    pub(crate) fn start(&self, name: &str) {
        let mut s = self.state();
        s.running.push((name.to_string(), Instant::now()));
        if let Some(bar) = &self.bar {
            bar.set_message(running(&s.running));
        }
    }

    /// `name` is done.
    pub(crate) fn finish(&self, name: &str, ok: bool) {
        let mut s = self.state();
        let started = s
            .running
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| s.running.remove(i).1);
        let took = started.map_or(Duration::ZERO, |t| t.elapsed());
        s.done.push(Timing {
            name: name.to_string(),
            took,
            ok,
        });
        let line = format!(
            "xtask: [{}/{}] {} {name} {} in {:.0} s",
            s.done.len(),
            self.total,
            self.what,
            if ok { "ok" } else { "FAILED" },
            took.as_secs_f64()
        );
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                bar.inc(1);
                bar.set_message(running(&s.running));
            }
            None => eprintln!("{line}"),
        }
    }

    /// Every finished step, slowest first; the bar is cleared.
    pub(crate) fn timings(&self) -> Vec<Timing> {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let mut t = self.state().done.clone();
        t.sort_by_key(|x| std::cmp::Reverse(x.took));
        t
    }
}

fn running(r: &[(String, Instant)]) -> String {
    let names: Vec<&str> = r.iter().map(|(n, _)| n.as_str()).collect();
    format!("running: {}", names.join(", "))
}

/// The summary table of `timings`: each step's result and seconds, slowest first,
/// with the total.
pub(crate) fn summary(what: &str, timings: &[Timing]) -> String {
    let width = timings
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!("{:<width$}  result  seconds\n", what);
    for t in timings {
        out.push_str(&format!(
            "{:<width$}  {:<6}  {:>7.1}\n",
            t.name,
            if t.ok { "ok" } else { "FAILED" },
            t.took.as_secs_f64()
        ));
    }
    let total: f64 = timings.iter().map(|t| t.took.as_secs_f64()).sum();
    out.push_str(&format!(
        "{:<width$}  {:<6}  {:>7.1}\n",
        format!("{} {what}s", timings.len()),
        "",
        total
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_counted_and_summarised_slowest_first() {
        let p = Progress::new("boot", 2);
        p.start("a");
        p.start("b");
        std::thread::sleep(Duration::from_millis(20));
        p.finish("b", false);
        p.finish("a", true);
        let t = p.timings();
        assert_eq!(t.len(), 2);
        assert!(t[0].took >= t[1].took);
        let s = summary("boot", &t);
        assert!(s.contains("FAILED") && s.contains("2 boots"), "{s}");
        assert_eq!(s.lines().count(), 4);
    }
}
