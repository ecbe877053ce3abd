//! The harness's negative control: with `selftest=fail` this test fails on purpose, and the
//! harness must see the failure (summary, exit status) or it reports itself broken.

use crate::ktest;

ktest! {
negative_control fn selftest_fail() -> TestResult {
    Err(alloc::string::String::from("deliberate failure (selftest=fail)"))
}
}
