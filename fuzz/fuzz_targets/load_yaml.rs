//! The YAML loader with span mapping: any bytes as a file to check. Loading
//! must end in objects or a diagnostic, never a panic, and every position
//! it hands out (each node's span, each located pointer, the masked copy a
//! report shows) must lie inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lkguard::load::Loaded;
use lkguard::locate;

fuzz_target!(|data: &[u8]| {
    let loaded = Loaded::from_bytes("fuzz.yaml", data.to_vec());
    for e in &loaded.errors {
        let _ = e.to_string();
    }
    for (f, file) in loaded.files.iter().enumerate() {
        let masked = lkguard::redact::masked(file);
        assert_eq!(masked.len(), file.text.len(), "masking keeps offsets");
        assert_eq!(
            masked.matches('\n').count(),
            file.text.matches('\n').count(),
            "masking keeps lines"
        );
        for (d, doc) in file.documents.iter().enumerate() {
            for (pointer, span) in doc.spans.iter() {
                assert!(span.anchor().offset <= file.text.len(), "{pointer}");
                if let Some(at) = locate::in_document(&loaded, f, d, pointer, None) {
                    assert!(at.offset <= file.text.len(), "{pointer}");
                    assert!(at.line >= 1 && at.line <= file.line_starts().len(), "{pointer}");
                }
            }
        }
    }
});
