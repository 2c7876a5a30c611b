//! HTML text, escaped: for the build's templates and the gate's small pages.

/// Escapes what HTML needs escaped; unlike Tera's default it leaves `/` alone,
/// so URLs in attributes stay readable.
/// Copies runs between the five bytes at once: pages carry long URLs and
/// `srcset` lists with nothing to escape.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.push_str(&s[run..i]);
        out.push_str(entity);
        run = i + 1;
    }
    out.push_str(&s[run..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_except_slashes() {
        assert_eq!(
            escape("<a href='/x?a=1&b=2'>\"秒杀\" é</a>"),
            "&lt;a href=&#39;/x?a=1&amp;b=2&#39;&gt;&quot;秒杀&quot; é&lt;/a&gt;"
        );
        assert_eq!(escape(""), "");
        assert_eq!(escape("/assets/a.webp 320w"), "/assets/a.webp 320w");
    }
}
