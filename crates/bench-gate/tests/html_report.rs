//! The HTML pages against the gate's own numbers: `report` shows exactly what
//! `compare --format json` decides for the same inputs, `history` orders exports by commit date
//! and lists the steps the gate would flag, and bad input gets a plain page or exit 1.

mod common;

use bench_gate::output;
use bench_gate::verdict::Change;
use common::*;
use serde_json::Value;

fn compare_json(s: &Scratch, base: &str, new: &str) -> (i32, Value) {
    let crit = s.crit();
    let out = s.run(&[
        "compare",
        base,
        new,
        "--criterion-dir",
        &crit,
        "--format",
        "json",
    ]);
    let code = out.status.code().unwrap();
    (code, serde_json::from_str(&stdout(&out)).unwrap())
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

/// Equal to the last bit or two: the page writes each number exactly (Rust's shortest round-trip
/// form, as serde_json writes the JSON report), but serde_json's default parser may land one
/// unit in the last place away when reading the JSON back.
fn same(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 2.0 * f64::EPSILON * a.abs().max(b.abs())
}

fn num(tag: &str, name: &str) -> f64 {
    attr(tag, name)
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        .parse()
        .unwrap()
}

#[test]
fn the_comparison_page_shows_the_numbers_of_the_json_report() {
    let s = Scratch::new();
    for new in ["slow25", "fast30", "tput_drop", "fat", "same"] {
        let (json_code, json) = compare_json(&s, "base", new);
        let html_path = s.path(&format!("{new}.html"));
        let (code, html) = s.report("base", new, &html_path);
        assert_eq!(code, json_code, "{new}: exit code of report vs compare");
        let cards = cards(&html);
        let benchmarks = json["benchmarks"].as_array().unwrap();
        assert_eq!(
            cards.len(),
            benchmarks.len(),
            "{new}: one card per benchmark"
        );
        for b in benchmarks {
            let id = b["id"].as_str().unwrap();
            let (tag, card) = cards
                .iter()
                .find(|(tag, _)| attr(tag, "data-id").as_deref() == Some(id))
                .unwrap_or_else(|| panic!("{new}: no card for {id}"));
            let verdict = b["verdict"].as_str().unwrap();
            assert_eq!(attr(tag, "data-verdict").as_deref(), Some(verdict), "{id}");
            for (attr_name, key) in [
                ("data-threshold-pct", "threshold_pct"),
                ("data-base", "base"),
                ("data-new", "new"),
            ] {
                let (page, json) = (num(tag, attr_name), f(&b[key]));
                assert!(same(page, json), "{id} {key}: page {page}, JSON {json}");
            }
            assert_eq!(num(tag, "data-samples-base"), f(&b["samples"]["base"]));
            assert_eq!(num(tag, "data-samples-new"), f(&b["samples"]["new"]));
            let c = &b["change"];
            for (attr_name, key) in [
                ("data-point-pct", "point_pct"),
                ("data-lower-pct", "lower_pct"),
                ("data-upper-pct", "upper_pct"),
                ("data-p-value", "p_value"),
            ] {
                let (page, json) = (num(tag, attr_name), f(&c[key]));
                assert!(same(page, json), "{id} {key}: page {page}, JSON {json}");
            }
            // What a reader sees: the change, interval, threshold, p and means, formatted from
            // the JSON numbers as the text and Markdown reports format them.
            let change = Change {
                point: f(&c["point_pct"]) / 100.0,
                lower: f(&c["lower_pct"]) / 100.0,
                upper: f(&c["upper_pct"]) / 100.0,
                p_value: f(&c["p_value"]),
            };
            let unit: bench_gate::DisplayUnit = serde_json::from_value(b["unit"].clone()).unwrap();
            for shown in [
                format!(
                    "<strong class=\"change\">{}</strong>",
                    output::change(&change)
                ),
                format!(
                    "<span class=\"threshold\">{}</span>",
                    output::threshold(f(&b["threshold_pct"]))
                ),
                format!(
                    "<span class=\"p\">{}</span>",
                    output::p_value(change.p_value).replace('<', "&lt;")
                ),
                format!(
                    "<span class=\"value-base\">{}</span>",
                    output::value(f(&b["base"]), unit)
                ),
                format!(
                    "<span class=\"value-new\">{}</span>",
                    output::value(f(&b["new"]), unit)
                ),
            ] {
                assert!(
                    card.contains(&shown),
                    "{new}/{id}: missing {shown} in\n{card}"
                );
            }
            assert!(
                card.matches("<svg").count() == 2,
                "{id}: a distributions chart and a change chart"
            );
        }
        // The summary: counts and the verdict as in the JSON report.
        for (verdict, n) in json["counts"].as_object().unwrap() {
            let badge = format!("data-verdict=\"{verdict}\" data-count=\"{n}\"");
            assert!(html.contains(&badge), "{new}: {badge}");
        }
        let passed = json["passed"].as_bool().unwrap();
        assert!(html.contains(&format!("data-passed=\"{passed}\"")));
        // Flagged cards first, and each flagged benchmark in the summary table.
        let verdicts: Vec<String> = cards
            .iter()
            .map(|(tag, _)| attr(tag, "data-verdict").unwrap())
            .collect();
        let first_unchanged = verdicts
            .iter()
            .position(|v| v == "unchanged")
            .unwrap_or(verdicts.len());
        assert!(
            verdicts[first_unchanged..].iter().all(|v| v == "unchanged"),
            "{new}: {verdicts:?}"
        );
        // Regressions are linked from the banner, the other flagged rows from the table.
        let banner = &html[html.find("id=\"verdict\"").unwrap()..];
        let banner = &banner[..banner.find("</div>").unwrap()];
        for b in benchmarks.iter().filter(|b| b["verdict"] != "unchanged") {
            let id = b["id"].as_str().unwrap();
            let link = format!(">{id}</a>");
            if b["verdict"] == "regressed" {
                assert!(banner.contains(&link), "{new}: {id} in the banner");
            } else {
                let table = &html[html.find("id=\"flagged-table\"").unwrap()..];
                assert!(table.contains(&link), "{new}: {id} in the table");
            }
        }
    }
}

#[test]
fn a_regression_is_named_in_the_banner_and_explained_on_its_card() {
    let s = Scratch::new();
    let (code, html) = s.report("base", "slow25", &s.path("page.html"));
    assert_eq!(code, 2);
    assert!(html.contains("FAIL: 1 benchmark regressed"), "{html}");
    let (_, card) = cards(&html)
        .into_iter()
        .find(|(tag, _)| attr(tag, "data-id").as_deref() == Some(SPIN_SMALL))
        .unwrap();
    assert!(
        card.contains("lies beyond the threshold and the change is significant"),
        "{card}"
    );
    // No network, nothing external: styles and charts are inline.
    for external in ["<link", "src=\"http", "href=\"http", "@import", "url("] {
        assert!(!html.contains(external), "{external}");
    }
}

#[test]
fn the_banner_names_only_missing_benchmarks_that_fail_the_gate() {
    let s = Scratch::new();
    // spin_large is missing from slow25 but informational: with fail_on_missing it still does
    // not fail, so the banner names the regression alone.
    std::fs::remove_dir_all(s.path("criterion/latency_fixture/spin_large/slow25")).unwrap();
    std::fs::write(
        s.path("bench-gate.toml"),
        format!(
            "[gate]\nfail_on_missing = true\n\
             [[informational]]\nid = \"{SPIN_LARGE}\"\nreason = \"not every run has it\"\n"
        ),
    )
    .unwrap();
    let (code, html) = s.report("base", "slow25", &s.path("page.html"));
    assert_eq!(code, 2);
    let banner = &html[html.find("id=\"verdict\"").unwrap()..];
    let banner = &banner[..banner.find("</div>").unwrap()];
    assert!(banner.contains("FAIL: 1 benchmark regressed<"), "{banner}");
    assert!(!banner.contains("missing"), "{banner}");
    assert!(!banner.contains(&format!(">{SPIN_LARGE}</a>")), "{banner}");
}

/// Three interleaved rounds per side from the fixtures: `old` (the same code each round:
/// `base`, `same`, `base`) against `pr` (`head` in every round).
fn rounds(s: &Scratch, head: &str) {
    s.copy_baseline("base", "old-r1");
    s.copy_baseline("same", "old-r2");
    s.copy_baseline("base", "old-r3");
    for k in 1..=3 {
        s.copy_baseline(head, &format!("pr-r{k}"));
    }
}

#[test]
fn a_page_of_interleaved_rounds_shows_the_change_of_each_round_of_flagged_benchmarks() {
    let s = Scratch::new();
    rounds(&s, "slow25");
    let crit = s.crit();
    let compare = s.run(&[
        "compare",
        "old",
        "pr",
        "--rounds",
        "3",
        "--criterion-dir",
        &crit,
        "--format",
        "json",
    ]);
    let json: Value = serde_json::from_str(&stdout(&compare)).unwrap();
    let html_path = s.path("rounds.html");
    let out = s.run(&[
        "report",
        "old",
        "pr",
        "--rounds",
        "3",
        "--warn",
        "instruction counts skipped: valgrind not found",
        "--criterion-dir",
        &crit,
        "--html",
        path(&html_path),
    ]);
    assert_eq!(out.status.code(), compare.status.code(), "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(2));
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("instruction counts skipped: valgrind not found"));
    let cards = cards(&html);
    let benchmarks = json["benchmarks"].as_array().unwrap();
    assert_eq!(cards.len(), benchmarks.len());
    let mut shown_rounds = 0;
    for b in benchmarks {
        let id = b["id"].as_str().unwrap();
        let (tag, card) = cards
            .iter()
            .find(|(tag, _)| attr(tag, "data-id").as_deref() == Some(id))
            .unwrap_or_else(|| panic!("no card for {id}"));
        assert_eq!(attr(tag, "data-verdict").as_deref(), b["verdict"].as_str());
        // The samples drawn are every round's, pooled per side, as the verdict counted them.
        assert_eq!(num(tag, "data-samples-base"), f(&b["samples"]["base"]));
        assert_eq!(num(tag, "data-samples-new"), f(&b["samples"]["new"]));
        let json_rounds: Vec<f64> = b["round_changes_pct"]
            .as_array()
            .unwrap()
            .iter()
            .map(f)
            .collect();
        assert_eq!(json_rounds.len(), 3, "{id}");
        let line = card
            .split("<p class=\"rounds\"")
            .nth(1)
            .map(|rest| rest.split("</p>").next().unwrap());
        if b["verdict"] == "unchanged" {
            assert!(
                line.is_none(),
                "{id}: rounds of an unchanged benchmark: {card}"
            );
            continue;
        }
        shown_rounds += 1;
        let line = line.unwrap_or_else(|| panic!("{id}: no rounds on a flagged card: {card}"));
        let page_rounds: Vec<f64> = attr(line, "data-round-changes-pct")
            .unwrap()
            .split(' ')
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(page_rounds.len(), 3);
        for (page, json) in page_rounds.iter().zip(&json_rounds) {
            assert!(
                same(*page, *json),
                "{id}: round change page {page}, JSON {json}"
            );
        }
        for c in &json_rounds {
            let shown = output::pct(c / 100.0);
            assert!(line.contains(&shown), "{id}: {shown} not in {line}");
        }
        assert!(line.contains("change per round"), "{line}");
    }
    assert!(shown_rounds >= 1, "the planted slowdown is flagged");
}

#[test]
fn a_page_of_rounds_refuses_what_compare_refuses() {
    let s = Scratch::new();
    rounds(&s, "same");
    let crit = s.crit();
    let html = s.path("rounds.html");
    // Round 4 was never run: an error naming it, and no page.
    let out = s.run(&[
        "report",
        "old",
        "pr",
        "--rounds",
        "4",
        "--criterion-dir",
        &crit,
        "--html",
        path(&html),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("old-r4"), "{}", stderr(&out));
    assert!(!html.exists());
    // One baseline against a set of rounds has nothing to pair.
    let out = s.run(&[
        "report",
        "base",
        "pr-r*",
        "--criterion-dir",
        &crit,
        "--html",
        path(&html),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("set of 3 rounds"), "{}", stderr(&out));
    // The pattern form reads every round saved and passes the same code.
    let out = s.run(&[
        "report",
        "old-r*",
        "pr-r*",
        "--criterion-dir",
        &crit,
        "--html",
        path(&html),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("3 interleaved rounds, paired"), "{page}");
}

#[test]
fn a_comparison_with_nothing_flagged_says_so_plainly() {
    let s = Scratch::new();
    let (code, html) = s.report("base", "same", &s.path("page.html"));
    assert_eq!(code, 0);
    assert!(
        html.contains("PASS: no regression, nothing flagged"),
        "{html}"
    );
    assert!(html.contains("All 4 benchmarks are unchanged"));
    assert!(!html.contains("<h2>Flagged"));
    assert!(!html.contains("flagged-table"));
}

#[test]
fn benchmarks_on_one_side_only_get_one_distribution_and_say_where_they_are() {
    let s = Scratch::new();
    s.export("base");
    let mut head = s.export("slow25");
    // Export format 2 keeps the byte-valued footprint benchmark apart from the timed ones.
    head["measurements"]
        .as_object_mut()
        .unwrap()
        .remove(STRINGS)
        .unwrap();
    let benchmarks = head["benchmarks"].as_object_mut().unwrap();
    let mut renamed = benchmarks.remove(BATCH).unwrap();
    let id = "throughput/fixture/batch/128";
    renamed["criterion_benchmark_v1"]["full_id"] = id.into();
    benchmarks.insert(id.to_string(), renamed);
    std::fs::write(s.path("head.json"), head.to_string()).unwrap();
    let (code, html) = s.report("base.json", "head.json", &s.path("page.html"));
    assert_eq!(code, 2, "the regression of spin_small still fails");
    let cards = cards(&html);
    let card = |id: &str| {
        cards
            .iter()
            .find(|(t, _)| attr(t, "data-id").as_deref() == Some(id))
            .unwrap()
    };
    let (tag, missing) = card(STRINGS);
    assert_eq!(attr(tag, "data-verdict").as_deref(), Some("missing"));
    assert!(
        missing.contains("Only in slow25") || missing.contains("Only in base"),
        "{missing}"
    );
    assert_eq!(missing.matches("<svg").count(), 1, "one side, no change");
    let (tag, new) = card(id);
    assert_eq!(attr(tag, "data-verdict").as_deref(), Some("new"));
    assert!(new.contains("nothing to compare with"), "{new}");
    assert_eq!(new.matches("<svg").count(), 1);

    // Where missing benchmarks fail the gate (strings, and batch/64 under its old name), the
    // banner says so and links them.
    std::fs::write(s.path("strict.toml"), "[gate]\nfail_on_missing = true\n").unwrap();
    let crit = s.crit();
    let page = s.path("strict.html");
    let out = s.run(&[
        "report",
        "base.json",
        "head.json",
        "--criterion-dir",
        &crit,
        "--config",
        "strict.toml",
        "--html",
        path(&page),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let html = std::fs::read_to_string(page).unwrap();
    assert!(
        html.contains("FAIL: 1 benchmark regressed, 2 benchmarks missing from slow25"),
        "{html}"
    );
    let banner = &html[html.find("id=\"verdict\"").unwrap()..];
    assert!(banner[..banner.find("</div>").unwrap()].contains(&format!(">{STRINGS}</a>")));
}

#[test]
fn criterion_pages_are_linked_relative_to_the_page_where_they_exist() {
    let s = Scratch::new();
    let report = s.path("criterion/latency_fixture/spin_small/report");
    std::fs::create_dir_all(&report).unwrap();
    std::fs::write(report.join("index.html"), "<html></html>").unwrap();
    let out_dir = s.path("out/pages");
    std::fs::create_dir_all(&out_dir).unwrap();
    let page = out_dir.join("report.html");
    let (_, html) = s.report("base", "slow25", &page);
    let cards = cards(&html);
    let href_of = |id: &str| {
        let (_, card) = cards
            .iter()
            .find(|(tag, _)| attr(tag, "data-id").as_deref() == Some(id))
            .unwrap();
        card.find("class=\"link\" href=\"")
            .map(|at| attr(&card[at - 1..], "href").unwrap())
    };
    let href = href_of(SPIN_SMALL).expect("a link where Criterion's page exists");
    assert_eq!(
        href,
        "../../criterion/latency_fixture/spin_small/report/index.html"
    );
    assert!(out_dir.join(&href).is_file());
    assert_eq!(href_of(SPIN_LARGE), None, "no link where there is no page");
}

#[test]
fn report_on_unreadable_input_exits_1_naming_the_problem() {
    let s = Scratch::new();
    let crit = s.crit();
    let page = s.path("page.html");
    let out = s.run(&[
        "report",
        "base",
        "nosuch",
        "--criterion-dir",
        &crit,
        "--html",
        path(&page),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("baseline 'nosuch' not found"),
        "{}",
        stderr(&out)
    );
    assert!(!page.exists(), "no page for a failed comparison");

    std::fs::write(
        s.path("cut.json"),
        "{\"format\": \"bench-gate-export\", \"vers",
    )
    .unwrap();
    let out = s.run(&[
        "report",
        "base",
        "cut.json",
        "--criterion-dir",
        &crit,
        "--html",
        path(&page),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("truncated JSON"), "{}", stderr(&out));

    let out = s.run(&[
        "report",
        "base",
        "same",
        "--criterion-dir",
        &crit,
        "--html",
        path(&s.path("no/such/dir/page.html")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("writing"), "{}", stderr(&out));
}

#[test]
fn exports_compare_on_the_page_like_the_directories_they_came_from() {
    let s = Scratch::new();
    s.export("base");
    s.export("slow25");
    let (_, from_dirs) = s.report("base", "slow25", &s.path("dirs.html"));
    let (_, from_files) = s.report("base.json", "slow25.json", &s.path("files.html"));
    let tags = |html: &str| -> Vec<String> { cards(html).into_iter().map(|(t, _)| t).collect() };
    assert_eq!(tags(&from_dirs), tags(&from_files));
}

fn history(s: &Scratch, cwd: &std::path::Path, files: &[std::path::PathBuf], html: &str) -> String {
    let page = s.path(html);
    let mut args = vec!["history".to_string()];
    args.extend(files.iter().map(|f| path(f).to_string()));
    args.extend(["--html".to_string(), path(&page).to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = s.run_in(Some(cwd), &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::read_to_string(page).unwrap()
}

/// The short commits of the exports table, in page order.
fn export_order(html: &str) -> Vec<String> {
    let table = &html[html.find("<table id=\"exports\">").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    table
        .split("<tr")
        .skip(2)
        .map(|row| {
            let at = row.find("<code>").unwrap() + "<code>".len();
            row[at..at + 7].to_string()
        })
        .collect()
}

#[test]
fn history_orders_exports_by_commit_date_and_lists_steps_first() {
    let s = Scratch::new();
    let ten = ten_exports(&s);
    let html = history(&s, &ten.repo, &ten.files, "history.html");
    let expected: Vec<String> = ten.commits.iter().map(|c| c[..7].to_string()).collect();
    assert_eq!(export_order(&html), expected, "commit order");
    assert!(!html.contains("placed by their export date"));

    let cards = cards(&html);
    let ids: Vec<String> = cards
        .iter()
        .map(|(t, _)| attr(t, "data-id").unwrap())
        .collect();
    // Steps for the worse first, the largest first (strings +50%, spin_small +25%), then the
    // step for the better (spin_large), then the rest.
    assert_eq!(ids, [STRINGS, SPIN_SMALL, SPIN_LARGE, BATCH]);
    let card = |id: &str| {
        &cards
            .iter()
            .find(|(t, _)| attr(t, "data-id").as_deref() == Some(id))
            .unwrap()
            .1
    };
    assert!(card(SPIN_SMALL).contains("#4 → #5"), "{}", card(SPIN_SMALL));
    assert!(card(STRINGS).contains("#6 → #7"));
    assert!(card(SPIN_LARGE).contains("#7 → #8"));
    assert!(card(BATCH).contains("absent from #9"));
    assert_eq!(attr(&cards[3].0, "data-steps").as_deref(), Some("0"));
    assert_eq!(attr(&cards[3].0, "data-present").as_deref(), Some("9"));
    assert!(html
        .contains("2 benchmark(s) stepped beyond their threshold for the worse, 1 for the better"));
    assert!(html.contains("1 of 4 benchmarks are missing from some exports"));
    // One chart per benchmark, and the filter box with its script.
    assert_eq!(html.matches("<svg").count(), 4);
    assert!(html.contains("<input id=\"filter\""));
    assert!(html.contains("<script>"));
}

#[test]
fn without_git_history_exports_are_placed_by_their_export_date_and_the_page_says_so() {
    let s = Scratch::new();
    let ten = ten_exports(&s);
    // Outside the repository git cannot look the commits up; exports are dated newest-first.
    let html = history(&s, s.dir.path(), &ten.files, "history.html");
    let mut expected: Vec<String> = ten.commits.iter().map(|c| c[..7].to_string()).collect();
    expected.reverse();
    assert_eq!(export_order(&html), expected);
    assert!(html.contains("placed by their export date"));
}

#[test]
fn a_single_export_is_a_history_that_says_so() {
    let s = Scratch::new();
    s.export("base");
    let html = history(&s, s.dir.path(), &[s.path("base.json")], "one.html");
    assert!(html.contains("Only one export: no history yet"), "{html}");
    assert_eq!(cards(&html).len(), 4);
    assert_eq!(html.matches("<svg").count(), 4);
}

#[test]
fn history_of_exports_of_another_format_or_version_exits_1_naming_the_file() {
    let s = Scratch::new();
    let export = s.export("base");
    let page = s.path("h.html");
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &str); 3] = [
        (
            "v9.json",
            |v: &mut Value| v["version"] = 9.into(),
            "unsupported export format version 9",
        ),
        (
            "other.json",
            |v: &mut Value| v["format"] = "other-tool".into(),
            "unknown format 'other-tool'",
        ),
        (
            "critcmp.json",
            |v: &mut Value| {
                let o = v.as_object_mut().unwrap();
                o.remove("format");
                o.remove("version");
                for b in o["benchmarks"].as_object_mut().unwrap().values_mut() {
                    b.as_object_mut().unwrap().remove("criterion_sample_v1");
                }
            },
            "a plain critcmp export cannot be gated",
        ),
    ];
    for (name, edit, message) in cases {
        let mut bad = export.clone();
        edit(&mut bad);
        let file = s.path(name);
        std::fs::write(&file, bad.to_string()).unwrap();
        let out = s.run(&[
            "history",
            path(&s.path("base.json")),
            path(&file),
            "--html",
            path(&page),
        ]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = stderr(&out);
        assert!(err.contains(name) && err.contains(message), "{name}: {err}");
        assert!(!page.exists());
    }
    let out = s.run(&["history", "--html", path(&page)]);
    assert_eq!(out.status.code(), Some(1), "no files is a usage error");
}

/// The text of each `<text>` element of a card's change chart (`<figure class="change">`).
fn change_chart_texts(card: &str) -> Vec<String> {
    let start = card.find("<figure class=\"change\">").unwrap();
    let end = start + card[start..].find("</figure>").unwrap();
    card[start..end]
        .split("<text")
        .skip(1)
        .filter_map(|t| Some(t[t.find('>')? + 1..t.find("</text>")?].trim().to_string()))
        .collect()
}

#[test]
fn quality_changes_and_thresholds_are_in_points_on_the_comparison_page() {
    let s = Scratch::new();
    s.quality("q_base", 0.85, 10);
    s.quality("q_drop", 0.82, 10);
    s.quality("q_gain", 0.95, 10);
    // A drop of 3 points fails the gate: named in the banner with its change in points.
    let (code, html) = s.report("q_base", "q_drop", &s.path("drop.html"));
    assert_eq!(code, 2);
    let banner = &html[html.find("id=\"verdict\"").unwrap()..];
    let banner = &banner[..banner.find("</div>").unwrap()];
    assert!(
        banner.contains(&format!(">{QUALITY}</a> -3.0 pts")),
        "{banner}"
    );
    // A gain is flagged in the table, in points against a threshold in points.
    let (code, gain) = s.report("q_base", "q_gain", &s.path("gain.html"));
    assert_eq!(code, 0);
    let table = &gain[gain.find("id=\"flagged-table\"").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    assert!(
        table.contains("+10.0 pts (exact)") && table.contains("-2 pts"),
        "{table}"
    );
    assert!(!table.contains('%'), "{table}");
    // The change chart labels its threshold lines in points, like its axis.
    for page in [&html, &gain] {
        let (_, card) = cards(page)
            .into_iter()
            .find(|(tag, _)| attr(tag, "data-id").as_deref() == Some(QUALITY))
            .unwrap();
        let texts = change_chart_texts(&card);
        assert!(
            texts.iter().any(|t| t == "-2pt") && texts.iter().any(|t| t == "+2pt"),
            "{texts:?}"
        );
        assert!(!texts.iter().any(|t| t.ends_with('%')), "{texts:?}");
    }
}

#[test]
fn a_history_of_quality_figures_is_in_points_with_a_band_of_points() {
    let s = Scratch::new();
    s.quality("q_base", 0.85, 10);
    s.quality("q_drop", 0.82, 10);
    let mut files = Vec::new();
    for (i, name) in ["q_base", "q_drop"].into_iter().enumerate() {
        // Outside a git repository the exports are placed by their dates: q_drop is the later.
        let mut export = s.export(name);
        export["machine"]["date"] = serde_json::json!(format!("2026-12-0{}T08:00:00Z", i + 1));
        let file = s.path(&format!("{name}.json"));
        std::fs::write(&file, export.to_string()).unwrap();
        files.push(file);
    }
    let html = history(&s, s.dir.path(), &files, "quality.html");
    assert!(
        html.contains(&format!(">{QUALITY}</a> -3.0 pts at #2")),
        "{html}"
    );
    let (tag, card) = cards(&html)
        .into_iter()
        .find(|(tag, _)| attr(tag, "data-id").as_deref() == Some(QUALITY))
        .unwrap();
    assert!(card.contains("threshold -2 pts"), "{card}");
    assert!(card.contains(">-3.0 pts</span> #1 → #2"), "{card}");
    assert!(!card.contains("%</span>"), "{card}");
    // The band is the latest value, 0.82, plus or minus 2 points: not 0.82 * (1 ± 2%).
    let (low, high) = (num(&tag, "data-band-low"), num(&tag, "data-band-high"));
    assert!(
        (low - 0.80).abs() < 1e-9 && (high - 0.84).abs() < 1e-9,
        "{low} {high}"
    );
}
