//! Hands the linker script to rust-lld by absolute path (cargo's working directory for the
//! link step is not the workspace root).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let top = std::path::Path::new(&dir).parent().expect("kernel/ has a parent");
    let ld = top.join("linker/kernel.ld");
    println!("cargo:rustc-link-arg-bins=-T{}", ld.display());
    println!("cargo:rerun-if-changed={}", ld.display());
    for f in ["boot/entry.S", "boot/vectors.S", "boot/mem.S"] {
        println!("cargo:rerun-if-changed={}", top.join(f).display());
    }
}
