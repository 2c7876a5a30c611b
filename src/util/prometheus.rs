//! The Prometheus text exposition format (version 0.0.4): written by the gate
//! at `/metrics`, read back by whoever watches gates. Label values are escaped
//! on the way out and unescaped on the way in, so a sale or item name with a
//! quote or backslash cannot break a line.

use std::fmt::{Display, Write};

/// The Content-Type of the format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// A page of metrics being written.
#[derive(Default)]
pub(crate) struct Writer {
    text: String,
}

impl Writer {
    /// Starts a metric family: its `# HELP` and `# TYPE` lines.
    pub(crate) fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample line.
    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    pub(crate) fn finish(self) -> String {
        self.text
    }
}

fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Latencies counted into fixed buckets, lock-free: what a histogram
/// family reports.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    buckets: [std::sync::atomic::AtomicU64; LATENCY_BUCKETS.len()],
    count: std::sync::atomic::AtomicU64,
    sum_micros: std::sync::atomic::AtomicU64,
}

/// Upper bounds in seconds: half a millisecond to a second.
pub(crate) const LATENCY_BUCKETS: [f64; 10] =
    [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0];

impl Histogram {
    pub(crate) fn observe(&self, micros: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let secs = micros as f64 / 1e6;
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(micros, Relaxed);
    }

    /// How many were observed.
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Writer {
    /// A histogram family `name`, its buckets, sum and count with `labels`.
    pub(crate) fn histogram(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        h: &Histogram,
    ) {
        use std::sync::atomic::Ordering::Relaxed;
        self.family(name, Kind::Histogram, help);
        let bucket = format!("{name}_bucket");
        let mut with: Vec<(&str, &str)> = labels.to_vec();
        let bounds: Vec<String> = LATENCY_BUCKETS.iter().map(|b| b.to_string()).collect();
        for (i, le) in bounds.iter().enumerate() {
            with.push(("le", le));
            self.sample(&bucket, &with, h.buckets[i].load(Relaxed));
            with.pop();
        }
        let count = h.count.load(Relaxed);
        with.push(("le", "+Inf"));
        self.sample(&bucket, &with, count);
        self.sample(
            &format!("{name}_sum"),
            labels,
            h.sum_micros.load(Relaxed) as f64 / 1e6,
        );
        self.sample(&format!("{name}_count"), labels, count);
    }
}

/// One sample read back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) value: f64,
}

impl Sample {
    pub(crate) fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Every sample of metric `name` in `text`; lines that do not parse are skipped.
pub(crate) fn samples(text: &str, name: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(parse_line)
        .filter(|s| s.name == name)
        .collect()
}

/// One line of a metrics page as a sample, if it is one.
pub(crate) fn parse_sample(line: &str) -> Option<Sample> {
    parse_line(line)
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => {
                    rest = &inner[i + 1..];
                    break;
                }
                ',' | ' ' => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                c => value.push(c),
                            },
                            c => value.push(c),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                c => key.push(c),
            }
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_read_back() {
        let mut w = Writer::default();
        w.family("x_total", Kind::Counter, "Things.");
        w.sample("x_total", &[("sku", "A\"1\\b\nc"), ("gate", "g")], 3);
        w.sample("x_total", &[], 4.5);
        w.sample("y", &[("sku", "B")], 1);
        let text = w.finish();
        assert!(
            text.contains("x_total{sku=\"A\\\"1\\\\b\\nc\",gate=\"g\"} 3\n"),
            "{text}"
        );
        let back = samples(&text, "x_total");
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].label("sku"), Some("A\"1\\b\nc"));
        assert_eq!(back[0].label("gate"), Some("g"));
        assert_eq!(back[0].value, 3.0);
        assert_eq!(back[1].value, 4.5);
        assert!(samples("garbage{\n", "garbage").is_empty());
    }
}
