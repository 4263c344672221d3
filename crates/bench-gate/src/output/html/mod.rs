//! Self-contained HTML pages: a comparison ([`comparison`]) and a history of exports
//! ([`history`]). Each page is one file with its CSS, its SVG charts (`chart`, drawn by
//! plotters) and a few lines of script inline: it opens from disk and loads nothing.

mod chart;
pub mod comparison;
pub mod history;

use std::path::{Component, Path, PathBuf};

use crate::verdict::Verdict;

/// Escapes text for HTML content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A relative URL from a page in `page_dir` to `target` (both absolute or both relative to the
/// same directory), each path segment percent-encoded. `None` when no relative path exists
/// (another drive on Windows).
pub fn relative_url(page_dir: &Path, target: &Path) -> Option<String> {
    let from: Vec<Component> = page_dir.components().collect();
    let to: Vec<Component> = target.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    if common == 0 && (page_dir.has_root() || target.has_root()) {
        return None;
    }
    let mut rel = PathBuf::new();
    for c in &from[common..] {
        match c {
            Component::CurDir => {}
            Component::Normal(_) => rel.push(".."),
            // `..` or a prefix left in the page's directory: no relative path can be written.
            _ => return None,
        }
    }
    for c in &to[common..] {
        rel.push(c.as_os_str());
    }
    let segments: Vec<String> = rel
        .components()
        .map(|c| percent_encode(&c.as_os_str().to_string_lossy()))
        .collect();
    Some(segments.join("/"))
}

/// Percent-encodes everything but RFC 3986's unreserved characters (a Criterion directory may
/// hold spaces, `#` or `%`, which would end or garble a URL).
fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// CSS class of a verdict's badge.
fn verdict_class(v: Verdict) -> &'static str {
    v.name()
}

/// The page around `body`: CSS inline, no external resource of any kind.
fn page(title: &str, body: &str, script: Option<&str>) -> String {
    let script = script
        .map(|s| format!("<script>\n{s}\n</script>\n"))
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n{body}{script}</body>\n</html>\n",
        escape(title)
    )
}

const CSS: &str = r#"
:root { --worse: #cc3311; --better: #228833; --undecided: #bb8800; --base: #4477aa; --new: #ee7733;
        --muted: #666; --line: #ddd; --bg-soft: #f6f7f9; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       margin: 0 auto; padding: 16px 24px 48px; max-width: 1400px; }
h1 { font-size: 20px; margin: 0 0 10px; }
h2 { font-size: 16px; margin: 26px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
code, .id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
a { color: #1f5fa8; }
.banner { border-radius: 6px; padding: 10px 14px; font-size: 17px; font-weight: 600; margin: 6px 0 10px; }
.banner.fail { background: #fbe9e5; border: 1px solid var(--worse); color: #8a2000; }
.banner.pass { background: #e8f4ea; border: 1px solid var(--better); color: #17591f; }
.banner.info { background: var(--bg-soft); border: 1px solid var(--line); color: #333; }
.banner .list { display: block; font-size: 14px; font-weight: 400; margin-top: 4px; }
.banner .list a { color: inherit; }
.banner .sub { display: block; font-size: 13px; font-weight: 400; color: #333; margin-top: 2px; }
.counts { display: flex; flex-wrap: wrap; gap: 6px; margin: 8px 0; }
.badge { display: inline-block; border-radius: 10px; padding: 1px 9px; font-size: 12px; font-weight: 600;
         color: #fff; background: #888; white-space: nowrap; }
.badge.regressed, .badge.worse { background: var(--worse); }
.badge.missing { background: #882255; }
.badge.inconclusive { background: var(--undecided); }
.badge.improved, .badge.better { background: var(--better); }
.badge.new { background: var(--base); }
.badge.unchanged { background: #999; }
.badge.zero { opacity: .35; }
.warn { background: #fff6db; border: 1px solid #e0c060; border-radius: 6px; padding: 6px 10px; margin: 6px 0; }
.meta { color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { text-align: left; padding: 3px 10px 3px 0; border-bottom: 1px solid #eee; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(620px, 1fr)); gap: 12px; }
.cards.small { grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; background: #fff; }
.card.regressed, .card.missing { border-left: 5px solid var(--worse); }
.card.inconclusive { border-left: 5px solid var(--undecided); }
.card.improved { border-left: 5px solid var(--better); }
.card.new { border-left: 5px solid var(--base); }
.card.stepped-worse { border-left: 5px solid var(--worse); }
.card.stepped-better { border-left: 5px solid var(--better); }
.card header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 8px; }
.card header .id { font-weight: 600; font-size: 14px; word-break: break-all; }
.card header .link { margin-left: auto; font-size: 12px; }
.card .why { margin: 4px 0 2px; }
.card .figures { color: var(--muted); font-size: 13px; }
.plots { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 4px; }
.plots figure { margin: 0; flex: 0 1 auto; min-width: 0; }
/* Charts keep the size they were drawn at (their fonts with them), shrinking only to fit. */
.plots svg, .trend svg { max-width: 100%; height: auto; display: block; }
.legend { font-size: 13px; color: #333; }
.legend .swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; vertical-align: -1px; }
.filter { position: sticky; top: 0; background: #fff; padding: 8px 0; z-index: 1; border-bottom: 1px solid var(--line); }
.filter input { font: inherit; padding: 4px 8px; width: 360px; max-width: 100%; }
.hidden { display: none !important; }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_content_and_attributes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn a_relative_url_climbs_out_of_the_page_directory_and_encodes_segments() {
        let url = relative_url(
            Path::new("/w/out/pages"),
            Path::new("/w/target/criterion/latency_x/a b#1/report/index.html"),
        );
        assert_eq!(
            url.as_deref(),
            Some("../../target/criterion/latency_x/a%20b%231/report/index.html")
        );
        let url = relative_url(Path::new("/w"), Path::new("/w/c/index.html"));
        assert_eq!(url.as_deref(), Some("c/index.html"));
    }
}
