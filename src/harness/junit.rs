//! The JUnit XML form of a run, for CI systems: one `<testsuite>` per spec file, one
//! `<testcase>` per expectation (and per proof). A false hypothesis is a `<failure>`; an
//! undecided one or one that could not run is an `<error>` (type `unknown` or `error`), so a CI
//! job never shows it as passed. No timings: the same run gives the same bytes.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::report::{CheckReport, ExpectationResult, Status, SuiteReport};

type Xml = Writer<Vec<u8>>;

fn io(e: std::io::Error) -> String {
    e.to_string()
}

fn counts<'a>(es: impl Iterator<Item = &'a ExpectationResult>) -> [usize; 3] {
    let mut c = [0, 0, 0];
    for e in es {
        c[0] += 1;
        match e.status {
            Status::Fail => c[1] += 1,
            Status::Unknown | Status::Error => c[2] += 1,
            Status::Pass => {}
        }
    }
    c
}

fn start(w: &mut Xml, name: &str, attrs: &[(&str, String)]) -> Result<(), String> {
    let mut el = BytesStart::new(name);
    for (k, v) in attrs {
        el.push_attribute((*k, v.as_str()));
    }
    w.write_event(Event::Start(el)).map_err(io)
}

fn empty(w: &mut Xml, name: &str, attrs: &[(&str, String)]) -> Result<(), String> {
    let mut el = BytesStart::new(name);
    for (k, v) in attrs {
        el.push_attribute((*k, v.as_str()));
    }
    w.write_event(Event::Empty(el)).map_err(io)
}

fn end(w: &mut Xml, name: &str) -> Result<(), String> {
    w.write_event(Event::End(BytesEnd::new(name))).map_err(io)
}

/// `specs/circuits/tracr_reverse.interp` + `tracr_reverse_model` →
/// `specs.circuits.tracr_reverse.tracr_reverse_model` (what JUnit viewers group by).
fn classname(u: &CheckReport) -> String {
    let stem = u.spec.strip_suffix(".interp").unwrap_or(&u.spec);
    let path: String = stem
        .chars()
        .map(|c| if c == '/' || c == '\\' { '.' } else { c })
        .collect();
    format!("{}.{}", path.trim_start_matches('.'), u.name)
}

fn testcase(w: &mut Xml, u: &CheckReport, e: &ExpectationResult) -> Result<(), String> {
    let name = match u.kind {
        super::report::UnitKind::Check => e.expectation.clone(),
        super::report::UnitKind::Prove => format!("prove {}", e.expectation),
    };
    let attrs = [("classname", classname(u)), ("name", name)];
    if e.status == Status::Pass {
        return empty(w, "testcase", &attrs);
    }
    start(w, "testcase", &attrs)?;
    let (tag, kind) = match e.status {
        Status::Fail => ("failure", "fail"),
        Status::Unknown => ("error", "unknown"),
        _ => ("error", "error"),
    };
    start(
        w,
        tag,
        &[("message", e.summary.clone()), ("type", kind.to_string())],
    )?;
    let mut body: Vec<String> = Vec::new();
    if let Some(c) = &e.counterexample {
        body.push(format!("counterexample: {}", c.text()));
    }
    body.extend(e.details.iter().cloned());
    if let Some(s) = e.seed {
        body.push(format!("seed {s}"));
    }
    w.write_event(Event::Text(BytesText::new(&body.join("\n"))))
        .map_err(io)?;
    end(w, tag)?;
    end(w, "testcase")
}

/// The run as JUnit XML.
pub fn junit(r: &SuiteReport) -> Result<String, String> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .map_err(io)?;
    let all = counts(r.units.iter().flat_map(|u| u.expectations.iter()));
    start(
        &mut w,
        "testsuites",
        &[
            ("name", "congruity test".to_string()),
            ("tests", all[0].to_string()),
            ("failures", all[1].to_string()),
            ("errors", all[2].to_string()),
        ],
    )?;
    // Units are in spec order: one suite per run of units of the same spec.
    let mut i = 0;
    while i < r.units.len() {
        let spec = &r.units[i].spec;
        let j = i + r.units[i..].iter().take_while(|u| &u.spec == spec).count();
        let units = &r.units[i..j];
        let c = counts(units.iter().flat_map(|u| u.expectations.iter()));
        start(
            &mut w,
            "testsuite",
            &[
                ("name", spec.clone()),
                ("tests", c[0].to_string()),
                ("failures", c[1].to_string()),
                ("errors", c[2].to_string()),
                ("skipped", "0".to_string()),
            ],
        )?;
        let sha = r.specs.iter().find(|s| &s.path == spec).map(|s| &s.sha256);
        let mut props: Vec<(String, String)> = Vec::new();
        if let Some(s) = sha {
            props.push(("sha256".into(), s.clone()));
        }
        props.push(("tool".into(), r.tool.clone()));
        if let Some(s) = r.seed {
            props.push(("seed".into(), s.to_string()));
        }
        start(&mut w, "properties", &[])?;
        for (k, v) in props {
            empty(&mut w, "property", &[("name", k), ("value", v)])?;
        }
        end(&mut w, "properties")?;
        for u in units {
            for e in &u.expectations {
                testcase(&mut w, u, e)?;
            }
        }
        end(&mut w, "testsuite")?;
        i = j;
    }
    end(&mut w, "testsuites")?;
    let mut bytes = w.into_inner();
    bytes.push(b'\n');
    String::from_utf8(bytes).map_err(|e| e.to_string())
}
