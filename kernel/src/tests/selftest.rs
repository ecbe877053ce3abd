//! The harness's negative control: with `selftest=fail` this test fails on purpose, and the
//! harness must see the failure (summary, exit status) or it reports itself broken.

use crate::ktest;
use crate::ktest::TestResult;

fn selftest_fail() -> TestResult {
    Err("deliberate failure (selftest=fail)".into())
}
ktest!(negative_control selftest_fail);
