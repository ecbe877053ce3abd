//! Trace events of the retract path (`trace=1`): what each record means, how a record sits in
//! a per-CPU ring of atomics, and the console lines the kernel dumps them as and the harness
//! reads back. The kernel side (`kernel/src/trace.rs`) owns the rings and the timebase; this
//! file is the part both sides must agree on, so it is here, portable and host-tested.
//!
//! A ring is filled once and then **stops**: a record that finds it full is dropped and
//! counted, never written over an older one. So the dump shows the beginning of a workload,
//! and a reader never sees a record half overwritten by a newer one: each slot is written at
//! most once, header last.
//!
//! Recording is lock-free and interrupt-safe: a record reserves its slot with one
//! `fetch_add` on the ring's counter, so an interrupt on the same CPU that records meanwhile
//! gets the next slot, and the interrupted record completes its own slot afterwards. A slot
//! whose header is still 0 when the ring is read is a record in progress and is not shown.
//!
//! The dump, one console line each (numbers in hex except in `begin`/`end`):
//!
//! ```text
//! trace: begin tb_hz=512000000 cpus=2 capacity=8192 strategy=refcount mmu=radix
//! trace: <cpu> <timebase> <kind> <a> <b>
//! trace: end events=<lines above> dropped=<records lost>
//! ```

// The rings take no part in any correctness argument, so they use core's atomics even in the
// loom build (where `crate::sync` would hand out loom's, usable only inside a model).
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

/// Every console line of a dump starts with this.
pub const PREFIX: &str = "trace:";

/// What happened. The meaning of `a` and `b` is each variant's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    /// `pte_free_defer()` was handed a table: `a` the table, `b` its fragment index in its
    /// page (the page is `a` rounded down to 64K).
    Defer = 1,
    /// A page-table page's `rcu_head` was queued: `a` the page, `b` the grace period its
    /// callback waits for (the `completed` value, Linux's `rcu_seq_snap`).
    CallRcu = 2,
    /// A grace period started: `a` its `gp_seq` (odd), `b` the mask of the CPUs it waits for.
    GpStart = 3,
    /// A grace period ended: `a` the completed `gp_seq` (even).
    GpEnd = 4,
    /// A CPU reported a quiescent state that the running grace period waited for: `a` the
    /// CPU, `b` that grace period's `gp_seq`.
    Qs = 5,
    /// A page-table page's RCU callback began: `a` the page.
    CbStart = 6,
    /// ... and ended: `a` the page.
    CbEnd = 7,
    /// A page-table page was really freed (before its poisoning): `a` the page.
    Free = 8,
    /// A traced read-side section began: `a` the address it walks, `b` the [`ReadSite`].
    ReadBegin = 9,
    /// ... and ended: `a` the PTE table it read (0 if none), `b` the [`ReadSite`].
    ReadEnd = 10,
    /// A cross-CPU flush (or `serialize_against_pte_lookup()`) sent its IPIs: `a` the
    /// generation, `b` the mask of the CPUs signalled.
    FlushStart = 11,
    /// ... and every CPU acknowledged it: `a` the generation.
    FlushEnd = 12,
    /// This CPU took the flush IPI, flushed and acknowledged: `a` the generation.
    FlushIpi = 13,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::Defer,
        Kind::CallRcu,
        Kind::GpStart,
        Kind::GpEnd,
        Kind::Qs,
        Kind::CbStart,
        Kind::CbEnd,
        Kind::Free,
        Kind::ReadBegin,
        Kind::ReadEnd,
        Kind::FlushStart,
        Kind::FlushEnd,
        Kind::FlushIpi,
    ];

    /// The word a dump line uses.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Defer => "defer",
            Kind::CallRcu => "call_rcu",
            Kind::GpStart => "gp_start",
            Kind::GpEnd => "gp_end",
            Kind::Qs => "qs",
            Kind::CbStart => "cb_start",
            Kind::CbEnd => "cb_end",
            Kind::Free => "free",
            Kind::ReadBegin => "read_begin",
            Kind::ReadEnd => "read_end",
            Kind::FlushStart => "flush_start",
            Kind::FlushEnd => "flush_end",
            Kind::FlushIpi => "flush_ipi",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    pub const fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(c: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == c)
    }
}

/// Where a traced read-side section is (the `b` of its `read_begin`/`read_end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ReadSite {
    /// `retract_torture`'s free-running GUP-fast-style walk.
    Walk = 1,
    /// `retract_torture`'s deterministic walker, held across a round's retract.
    DeterministicWalk = 2,
    /// A schedule's reader, holding a table while the driver defers it.
    ScheduleReader = 3,
    /// `gup_fast_recheck`'s reader, a walk held between its PTE read and its re-check.
    GupReader = 4,
    /// A schedule's driver holding a grace period open until its deferral under test.
    DriverHold = 5,
}

impl ReadSite {
    pub const ALL: [ReadSite; 5] = [
        ReadSite::Walk,
        ReadSite::DeterministicWalk,
        ReadSite::ScheduleReader,
        ReadSite::GupReader,
        ReadSite::DriverHold,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            ReadSite::Walk => "walk",
            ReadSite::DeterministicWalk => "deterministic_walk",
            ReadSite::ScheduleReader => "schedule_reader",
            ReadSite::GupReader => "gup_reader",
            ReadSite::DriverHold => "driver_hold",
        }
    }

    pub fn from_code(c: u64) -> Option<ReadSite> {
        ReadSite::ALL.into_iter().find(|s| *s as u64 == c)
    }
}

/// One record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub cpu: u32,
    /// Timebase at the record.
    pub tb: u64,
    pub kind: Kind,
    pub a: u64,
    pub b: u64,
}

/// Words per record: timebase, header, `a`, `b`.
pub const WORDS: usize = 4;
/// Set in every written header, so a header is never 0.
const VALID: u64 = 1 << 63;

/// The header word of a record: valid bit, kind, CPU.
pub const fn encode_header(kind: Kind, cpu: u32) -> u64 {
    VALID | (kind.code() as u64) << 32 | cpu as u64
}

/// Kind and CPU of a header word; None for an unwritten slot (0) or a word no
/// [`encode_header`] makes.
pub fn decode_header(w: u64) -> Option<(Kind, u32)> {
    if w & VALID == 0 || (w >> 40) & 0x7f_ffff != 0 {
        return None;
    }
    Some((Kind::from_code((w >> 32) as u8)?, w as u32))
}

/// One CPU's ring over `WORDS * capacity` atomics, filled once (see the module header).
pub struct Ring<'a> {
    words: &'a [AtomicU64],
    /// Records reserved so far, the dropped ones included.
    reserved: AtomicU64,
}

impl<'a> Ring<'a> {
    /// A ring over `words` (zeroed; its length a multiple of [`WORDS`]).
    pub fn new(words: &'a [AtomicU64]) -> Self {
        Ring { words, reserved: AtomicU64::new(0) }
    }

    /// Records it can hold.
    pub fn capacity(&self) -> usize {
        self.words.len() / WORDS
    }

    /// Records `ev`; false if the ring is full (the record is dropped and counted).
    pub fn record(&self, ev: &Event) -> bool {
        let i = self.reserved.fetch_add(1, Ordering::Relaxed) as usize;
        if i >= self.capacity() {
            return false;
        }
        let w = &self.words[i * WORDS..(i + 1) * WORDS];
        w[0].store(ev.tb, Ordering::Relaxed);
        w[2].store(ev.a, Ordering::Relaxed);
        w[3].store(ev.b, Ordering::Relaxed);
        // Release: a reader that sees the header sees the words above.
        w[1].store(encode_header(ev.kind, ev.cpu), Ordering::Release);
        true
    }

    /// Records that found the ring full.
    pub fn dropped(&self) -> u64 {
        self.reserved.load(Ordering::Relaxed).saturating_sub(self.capacity() as u64)
    }

    /// Slots reserved and not dropped: written, or being written.
    pub fn used(&self) -> usize {
        (self.reserved.load(Ordering::Relaxed) as usize).min(self.capacity())
    }

    /// The complete records, in the order their slots were reserved; a slot still being
    /// written (header 0) is skipped.
    pub fn events(&self) -> impl Iterator<Item = Event> + '_ {
        (0..self.used()).filter_map(move |i| {
            let w = &self.words[i * WORDS..(i + 1) * WORDS];
            let (kind, cpu) = decode_header(w[1].load(Ordering::Acquire))?;
            Some(Event {
                cpu,
                tb: w[0].load(Ordering::Relaxed),
                kind,
                a: w[2].load(Ordering::Relaxed),
                b: w[3].load(Ordering::Relaxed),
            })
        })
    }
}

/// The `trace: begin ...` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Begin<'a> {
    pub tb_hz: u64,
    pub cpus: u32,
    /// Records each CPU's ring holds.
    pub capacity: u64,
    pub strategy: &'a str,
    pub mmu: &'a str,
}

/// The `trace: end ...` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    /// Event lines between `begin` and `end`.
    pub events: u64,
    /// Records lost: rings full, or a record still being written at the dump.
    pub dropped: u64,
}

/// One line of a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    Begin(Begin<'a>),
    Event(Event),
    End(End),
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX} {:x} {:x} {} {:x} {:x}",
            self.cpu,
            self.tb,
            self.kind.name(),
            self.a,
            self.b
        )
    }
}

impl fmt::Display for Begin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX} begin tb_hz={} cpus={} capacity={} strategy={} mmu={}",
            self.tb_hz, self.cpus, self.capacity, self.strategy, self.mmu
        )
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX} end events={} dropped={}", self.events, self.dropped)
    }
}

/// Why a line that starts with [`PREFIX`] is not a dump line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not `begin`, `end` or an event.
    Shape,
    /// A `key=value` of `begin`/`end` is missing or not a number.
    Field(&'static str),
    /// An event's kind is not a [`Kind`] name.
    Kind,
    /// An event's CPU, timebase or argument is not hex.
    Number,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Shape => f.write_str("neither begin, end nor `<cpu> <tb> <kind> <a> <b>`"),
            ParseError::Field(k) => write!(f, "no {k}=N"),
            ParseError::Kind => f.write_str("unknown event kind"),
            ParseError::Number => f.write_str("a field is not a hex number"),
        }
    }
}

/// The value of `key=` among `words`.
fn value<'a>(words: &'a str, key: &'static str) -> Result<&'a str, ParseError> {
    words
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .ok_or(ParseError::Field(key))
}

fn number(words: &str, key: &'static str) -> Result<u64, ParseError> {
    value(words, key)?.parse().map_err(|_| ParseError::Field(key))
}

fn hex(s: &str) -> Result<u64, ParseError> {
    u64::from_str_radix(s, 16).map_err(|_| ParseError::Number)
}

/// Parses one console line: `Ok(None)` if it is not a trace line at all.
pub fn parse_line(line: &str) -> Result<Option<Line<'_>>, ParseError> {
    let Some(rest) = line.trim().strip_prefix(PREFIX) else {
        return Ok(None);
    };
    let rest = rest.trim();
    if let Some(kv) = rest.strip_prefix("begin ") {
        return Ok(Some(Line::Begin(Begin {
            tb_hz: number(kv, "tb_hz")?,
            cpus: number(kv, "cpus")?.try_into().map_err(|_| ParseError::Field("cpus"))?,
            capacity: number(kv, "capacity")?,
            strategy: value(kv, "strategy")?,
            mmu: value(kv, "mmu")?,
        })));
    }
    if let Some(kv) = rest.strip_prefix("end ") {
        return Ok(Some(Line::End(End {
            events: number(kv, "events")?,
            dropped: number(kv, "dropped")?,
        })));
    }
    let mut w = rest.split_whitespace();
    let (Some(cpu), Some(tb), Some(kind), Some(a), Some(b), None) =
        (w.next(), w.next(), w.next(), w.next(), w.next(), w.next())
    else {
        return Err(ParseError::Shape);
    };
    Ok(Some(Line::Event(Event {
        cpu: hex(cpu)?.try_into().map_err(|_| ParseError::Number)?,
        tb: hex(tb)?,
        kind: Kind::parse(kind).ok_or(ParseError::Kind)?,
        a: hex(a)?,
        b: hex(b)?,
    })))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::sync::Arc;
    use std::vec::Vec;

    fn ev(cpu: u32, tb: u64, kind: Kind, a: u64, b: u64) -> Event {
        Event { cpu, tb, kind, a, b }
    }

    fn words(records: usize) -> Vec<AtomicU64> {
        (0..records * WORDS).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn kinds_round_trip_by_name_and_code() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.name()), Some(k));
            assert_eq!(Kind::from_code(k.code()), Some(k));
        }
        assert_eq!(Kind::from_code(0), None);
        assert_eq!(Kind::from_code(14), None);
        assert_eq!(Kind::parse("Defer"), None);
        for s in ReadSite::ALL {
            assert_eq!(ReadSite::from_code(s as u64), Some(s));
        }
        assert_eq!(ReadSite::from_code(0), None);
    }

    #[test]
    fn headers_round_trip_and_reject_garbage() {
        for k in Kind::ALL {
            for cpu in [0, 1, 7, u32::MAX] {
                assert_eq!(decode_header(encode_header(k, cpu)), Some((k, cpu)));
            }
        }
        assert_eq!(decode_header(0), None, "an unwritten slot");
        assert_eq!(decode_header(encode_header(Kind::Qs, 3) & !VALID), None);
        assert_eq!(decode_header(VALID | 99 << 32), None, "no such kind");
        assert_eq!(decode_header(encode_header(Kind::Qs, 3) | 1 << 41), None);
    }

    #[test]
    fn event_lines_round_trip() {
        let e = ev(3, 0x1234_5678_9abc, Kind::Defer, 0x211_1000, 1);
        let line = e.to_string();
        assert_eq!(line, "trace: 3 123456789abc defer 2111000 1");
        assert_eq!(parse_line(&line), Ok(Some(Line::Event(e))));
        for k in Kind::ALL {
            let e = ev(7, u64::MAX, k, 0, u64::MAX);
            assert_eq!(parse_line(&e.to_string()), Ok(Some(Line::Event(e))));
        }
    }

    #[test]
    fn begin_and_end_round_trip() {
        let b = Begin {
            tb_hz: 512_000_000,
            cpus: 2,
            capacity: 8192,
            strategy: "refcount",
            mmu: "radix",
        };
        let line = b.to_string();
        assert_eq!(
            line,
            "trace: begin tb_hz=512000000 cpus=2 capacity=8192 strategy=refcount mmu=radix"
        );
        assert_eq!(parse_line(&line), Ok(Some(Line::Begin(b))));
        let e = End { events: 12, dropped: 0 };
        assert_eq!(e.to_string(), "trace: end events=12 dropped=0");
        assert_eq!(parse_line(&e.to_string()), Ok(Some(Line::End(e))));
    }

    #[test]
    fn other_lines_are_not_trace_lines() {
        for l in ["", "test a ... ok", "figure: retract x=1", "1 passed, 0 failed", " tracer: 1"] {
            assert_eq!(parse_line(l), Ok(None), "{l:?}");
        }
        // Surrounding blanks (a cleaned console line has none, a raw one may).
        assert!(matches!(parse_line("  trace: 0 1 qs 0 1\r"), Ok(Some(Line::Event(_)))));
    }

    #[test]
    fn malformed_trace_lines_are_errors() {
        for (l, e) in [
            ("trace:", ParseError::Shape),
            ("trace: 0 1 qs 0", ParseError::Shape),
            ("trace: 0 1 qs 0 1 2", ParseError::Shape),
            ("trace: 0 1 bogus 0 1", ParseError::Kind),
            ("trace: 0 xyz qs 0 1", ParseError::Number),
            ("trace: -1 1 qs 0 1", ParseError::Number),
            ("trace: 100000000 1 qs 0 1", ParseError::Number),
            ("trace: begin cpus=2 capacity=1 strategy=a mmu=b", ParseError::Field("tb_hz")),
            ("trace: begin tb_hz=x cpus=2 capacity=1 strategy=a mmu=b", ParseError::Field("tb_hz")),
            ("trace: begin tb_hz=1 cpus=2 capacity=1 mmu=b", ParseError::Field("strategy")),
            ("trace: end events=3", ParseError::Field("dropped")),
            ("trace: end events=0x3 dropped=0", ParseError::Field("events")),
        ] {
            assert_eq!(parse_line(l), Err(e), "{l:?}");
        }
    }

    #[test]
    fn ring_keeps_order_and_stops_when_full() {
        let w = words(3);
        let ring = Ring::new(&w);
        assert_eq!(ring.capacity(), 3);
        assert_eq!(ring.events().count(), 0);
        let all: Vec<Event> = (0..5).map(|i| ev(1, 100 + i, Kind::Qs, 1, i)).collect();
        let kept: Vec<bool> = all.iter().map(|e| ring.record(e)).collect();
        assert_eq!(kept, [true, true, true, false, false]);
        assert_eq!(ring.events().collect::<Vec<_>>(), all[..3]);
        assert_eq!((ring.used(), ring.dropped()), (3, 2));
    }

    #[test]
    fn a_slot_being_written_is_not_shown() {
        let w = words(4);
        let ring = Ring::new(&w);
        ring.record(&ev(0, 1, Kind::Defer, 0x1000, 1));
        // A record that reserved slot 1 and was interrupted before its header.
        ring.reserved.fetch_add(1, Ordering::Relaxed);
        ring.record(&ev(0, 3, Kind::Free, 0x10000, 0));
        let kinds: Vec<Kind> = ring.events().map(|e| e.kind).collect();
        assert_eq!(kinds, [Kind::Defer, Kind::Free]);
        assert_eq!(ring.used(), 3);
    }

    /// Several writers on one ring (an interrupt nesting on a CPU is the same race, in one
    /// thread): every kept record comes back whole, none twice, and kept + dropped = sent.
    #[test]
    fn concurrent_records_are_whole() {
        const PER: u64 = 2000;
        let w: &'static [AtomicU64] = Vec::leak(words(5000));
        let ring = Arc::new(Ring::new(w));
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                let ring = ring.clone();
                std::thread::spawn(move || {
                    (0..PER)
                        .filter(|&i| {
                            let x = (t as u64) << 32 | i;
                            ring.record(&ev(t, x, Kind::CbStart, x, !x))
                        })
                        .count() as u64
                })
            })
            .collect();
        let kept: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(kept, 5000);
        assert_eq!(ring.dropped(), 4 * PER - kept);
        let mut seen: Vec<u64> = ring
            .events()
            .map(|e| {
                assert_eq!(
                    (e.a, e.b, e.kind, e.cpu as u64),
                    (e.tb, !e.tb, Kind::CbStart, e.tb >> 32)
                );
                e.tb
            })
            .collect();
        assert_eq!(seen.len() as u64, kept);
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len() as u64, kept);
    }
}
