//! The dump as a Chrome trace-event file (`{"traceEvents": [...]}`), which ui.perfetto.dev and
//! chrome://tracing both open. Three processes: `CPUs` (one thread per CPU: its read sections,
//! callbacks and flushes as complete events `X`, every record as an instant `i`), `RCU` (one
//! thread: the grace periods, `X`) and `page-table pages` (one thread per page: its head's
//! queued spans, `X`, and its deferrals and free, `i`). `ts` and `dur` are microseconds from
//! the first record. Spans on one thread never overlap without nesting (a CPU's sections,
//! callbacks and flushes nest; a page's head is queued at most once at a time; grace periods
//! follow each other), which both viewers need of `X` events.

use super::{page_of, site_name, Dump, Timeline};
use ptfrag_core::trace::Kind;
use serde_json::{json, Value};

const PID_CPUS: u32 = 1;
const PID_RCU: u32 = 2;
const PID_PAGES: u32 = 3;

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

fn meta(pid: u32, tid: Option<u32>, value: &str, sort: u32) -> [Value; 2] {
    let (kind, sort_kind) = match tid {
        None => ("process_name", "process_sort_index"),
        Some(_) => ("thread_name", "thread_sort_index"),
    };
    let tid = tid.unwrap_or(0);
    [
        json!({"name": kind, "ph": "M", "pid": pid, "tid": tid, "args": {"name": value}}),
        json!({"name": sort_kind, "ph": "M", "pid": pid, "tid": tid, "args": {"sort_index": sort}}),
    ]
}

/// Microseconds from the first record, to the nanosecond (the timebase's own resolution is
/// about 2 ns at 512 MHz).
fn ts(d: &Dump, tb: u64) -> f64 {
    (d.us(tb) * 1000.0).round() / 1000.0
}

/// A complete event from `start` to `end` (timebase).
fn span(d: &Dump, name: &str, pid: u32, tid: u32, start: u64, end: u64, args: Value) -> Value {
    let dur = ((d.us(end) - d.us(start)) * 1000.0).round() / 1000.0;
    json!({
        "name": name, "ph": "X", "pid": pid, "tid": tid,
        "ts": ts(d, start), "dur": dur, "args": args,
    })
}

fn instant(d: &Dump, name: &str, pid: u32, tid: u32, tb: u64, args: Value) -> Value {
    json!({"name": name, "ph": "i", "s": "t", "pid": pid, "tid": tid, "ts": ts(d, tb), "args": args})
}

/// The trace-event document.
pub fn trace(d: &Dump, t: &Timeline) -> Value {
    let mut ev: Vec<Value> = Vec::new();
    ev.extend(meta(PID_CPUS, None, "CPUs", 0));
    for cpu in 0..d.cpus {
        ev.extend(meta(PID_CPUS, Some(cpu), &format!("cpu {cpu}"), cpu));
    }
    ev.extend(meta(PID_RCU, None, "RCU", 1));
    ev.extend(meta(PID_RCU, Some(0), "grace periods", 0));
    ev.extend(meta(PID_PAGES, None, "page-table pages", 2));
    for (i, p) in t.pages.iter().enumerate() {
        ev.extend(meta(PID_PAGES, Some(i as u32), &format!("page {:#x}", p.page), i as u32));
    }

    // Every record, as an instant on its CPU (the spans below are made of some of them).
    for e in &d.events {
        let args = match e.kind {
            Kind::Defer => json!({"table": hex(e.a), "page": hex(page_of(e.a)), "fragment": e.b}),
            Kind::CallRcu => json!({"page": hex(e.a), "waits_for_completed": e.b}),
            Kind::GpStart => json!({"gp_seq": e.a, "waits_for_cpus": hex(e.b)}),
            Kind::GpEnd => json!({"completed": e.a}),
            Kind::Qs => json!({"cpu": e.a, "gp_seq": e.b}),
            Kind::CbStart | Kind::CbEnd | Kind::Free => json!({"page": hex(e.a)}),
            Kind::ReadBegin => json!({"ea": hex(e.a), "site": site_name(e.b)}),
            Kind::ReadEnd => json!({"table": hex(e.a), "site": site_name(e.b)}),
            Kind::FlushStart => json!({"generation": e.a, "cpus": hex(e.b)}),
            Kind::FlushEnd | Kind::FlushIpi => json!({"generation": e.a}),
        };
        ev.push(instant(d, e.kind.name(), PID_CPUS, e.cpu, e.tb, args));
    }
    for r in &t.reads {
        let args = json!({"ea": hex(r.a), "table": hex(r.end_a), "unended": r.open});
        ev.push(span(d, site_name(r.b), PID_CPUS, r.cpu, r.start, r.end, args));
    }
    for c in &t.callbacks {
        let args = json!({"page": hex(c.a), "unended": c.open});
        ev.push(span(d, "rcu callback", PID_CPUS, c.cpu, c.start, c.end, args));
    }
    for f in &t.flushes {
        let args = json!({"generation": f.a, "cpus": hex(f.b), "unended": f.open});
        ev.push(span(d, "flush handshake", PID_CPUS, f.cpu, f.start, f.end, args));
    }
    for g in &t.gps {
        let args = json!({"gp_seq": g.seq, "waits_for_cpus": hex(g.waits_for), "unended": g.open});
        ev.push(span(d, &format!("gp {}", g.seq), PID_RCU, 0, g.start, g.end, args));
    }
    for (i, p) in t.pages.iter().enumerate() {
        let tid = i as u32;
        for (k, q) in p.queued.iter().enumerate() {
            let args = json!({"page": hex(q.page), "cpu": q.cpu, "unended": q.open});
            let name = format!("rcu_head queued #{}", k + 1);
            ev.push(span(d, &name, PID_PAGES, tid, q.start, q.end, args));
        }
        for df in &p.defers {
            let args = json!({"table": hex(df.table), "fragment": df.frag, "cpu": df.cpu});
            let name = format!("defer fragment {}", df.frag);
            ev.push(instant(d, &name, PID_PAGES, tid, df.tb, args));
        }
        for &(tb, cpu) in &p.frees {
            ev.push(instant(d, "free", PID_PAGES, tid, tb, json!({"cpu": cpu})));
        }
    }
    json!({
        "traceEvents": ev,
        "displayTimeUnit": "ms",
        "otherData": {
            "strategy": d.strategy, "mmu": d.mmu, "cpus": d.cpus,
            "tb_hz": d.tb_hz, "dropped": d.dropped,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ACTIVE, REFCOUNT};
    use super::super::{parse, Timeline};
    use super::*;

    fn doc(log: &str) -> Value {
        let d = parse(log).unwrap();
        let t = Timeline::new(&d);
        // Through the text, as a viewer reads it.
        serde_json::from_str(&serde_json::to_string(&trace(&d, &t)).unwrap()).unwrap()
    }

    fn events(v: &Value) -> &Vec<Value> {
        v["traceEvents"].as_array().unwrap()
    }

    #[test]
    fn every_event_has_what_the_viewers_need() {
        let v = doc(REFCOUNT);
        let evs = events(&v);
        assert!(evs.len() > 100);
        for e in evs {
            let ph = e["ph"].as_str().unwrap();
            assert!(["M", "X", "i"].contains(&ph), "{e}");
            assert!(e["name"].is_string() && e["pid"].is_u64() && e["tid"].is_u64(), "{e}");
            if ph != "M" {
                assert!(e["ts"].as_f64().unwrap() >= 0.0, "{e}");
            }
            if ph == "X" {
                assert!(e["dur"].as_f64().unwrap() >= 0.0, "{e}");
            }
            if ph == "i" {
                assert_eq!(e["s"], "t");
            }
        }
        assert_eq!(v["otherData"]["strategy"], "refcount");
    }

    /// Per thread, `X` events nest or follow each other: never a partial overlap.
    #[test]
    fn spans_on_a_thread_nest() {
        for log in [REFCOUNT, ACTIVE] {
            let v = doc(log);
            let mut by_thread: std::collections::BTreeMap<(u64, u64), Vec<(f64, f64)>> =
                Default::default();
            for e in events(&v).iter().filter(|e| e["ph"] == "X") {
                let ts = e["ts"].as_f64().unwrap();
                by_thread
                    .entry((e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()))
                    .or_default()
                    .push((ts, ts + e["dur"].as_f64().unwrap()));
            }
            for (thread, spans) in by_thread {
                for (i, a) in spans.iter().enumerate() {
                    for b in &spans[i + 1..] {
                        let disjoint = a.1 <= b.0 || b.1 <= a.0;
                        let nested = (a.0 <= b.0 && b.1 <= a.1) || (b.0 <= a.0 && a.1 <= b.1);
                        assert!(disjoint || nested, "{thread:?}: {a:?} and {b:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn threads_are_named_and_pages_hold_their_queued_spans() {
        let v = doc(ACTIVE);
        let names: Vec<&str> = events(&v)
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"cpu 0") && names.contains(&"cpu 1"));
        assert!(names.contains(&"grace periods"));
        assert!(names.iter().any(|n| n.starts_with("page 0x")));
        let queued = |log| {
            events(&doc(log))
                .iter()
                .filter(|e| e["ph"] == "X" && e["name"].as_str().unwrap().starts_with("rcu_head"))
                .count()
        };
        assert_eq!((queued(REFCOUNT), queued(ACTIVE)), (4, 2));
        let gps = events(&v).iter().filter(|e| e["pid"] == PID_RCU && e["ph"] == "X").count();
        assert!(gps >= 2);
    }
}
