//! The README's table of unsafe code outside `kernel/src/arch/` and `boot/` is kept true: this
//! test counts the unsafe blocks, functions, impls, traits and extern blocks of every Rust file
//! of the kernel and `ptfrag-core` outside `arch/` (attributes such as `#[unsafe(no_mangle)]`
//! are not unsafe code and are not counted) and compares them with the table between the
//! README's `unsafe-places` markers.

use std::collections::BTreeMap;
use std::path::Path;

/// Unsafe code in one file's text: `unsafe {`, `unsafe fn`, `unsafe impl`, `unsafe trait`,
/// `unsafe extern`, outside `//` comments.
pub fn count(text: &str) -> usize {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .map(|code| {
            let mut n = 0;
            let mut rest = code;
            while let Some(i) = rest.find("unsafe") {
                let after = rest[i + "unsafe".len()..].trim_start();
                let word_start = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric();
                let is_code =
                    ["{", "fn ", "impl", "trait ", "extern"].iter().any(|k| after.starts_with(k));
                if word_start && is_code && !rest[..i].ends_with("#[") {
                    n += 1;
                }
                rest = &rest[i + "unsafe".len()..];
            }
            n
        })
        .sum()
}

fn walk(dir: &Path, root: &Path, skip: &Path, out: &mut BTreeMap<String, usize>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.starts_with(skip) {
            continue;
        }
        if p.is_dir() {
            walk(&p, root, skip, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let n = count(&std::fs::read_to_string(&p).unwrap_or_default());
            if n > 0 {
                out.insert(p.strip_prefix(root).unwrap_or(&p).display().to_string(), n);
            }
        }
    }
}

/// Unsafe places per file of the kernel and ptfrag-core, `kernel/src/arch/` left out.
pub fn outside_arch(root: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let skip = root.join("kernel/src/arch");
    walk(&root.join("kernel/src"), root, &skip, &mut out);
    walk(&root.join("kernel/core/src"), root, &skip, &mut out);
    out
}

/// The README's table: rows `| \`path\` | N | why |` between the markers.
pub fn readme_table(readme: &str) -> BTreeMap<String, usize> {
    let (Some(a), Some(b)) =
        (readme.find("<!-- unsafe-places -->"), readme.find("<!-- /unsafe-places -->"))
    else {
        return BTreeMap::new();
    };
    readme[a..b]
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let path = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((path.to_string(), cells.get(2)?.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_code_not_attributes_or_comments() {
        let text = "#[unsafe(no_mangle)]\nfn a() { unsafe { x() } } // unsafe { no }\n\
                    unsafe fn b() {}\nunsafe impl Send for T {}\nlet unsafe_op = 1;\n\
                    unsafe extern \"C\" { fn c(); }\n";
        assert_eq!(count(text), 4);
    }

    #[test]
    fn readme_counts_unsafe_places_truly() {
        let root = crate::paths::workspace_root();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let table = readme_table(&readme);
        let real = outside_arch(&root);
        assert!(!table.is_empty(), "README has no unsafe-places table");
        let total: usize = real.values().sum();
        assert!(
            readme.contains(&format!("{total} unsafe places outside")),
            "README should say `{total} unsafe places outside`"
        );
        assert_eq!(table, real, "README's unsafe-places table (left) vs the tree (right)");
    }
}
