//! The AdmissionReview decoder: any bytes as a `POST /validate` body. It
//! must answer a review or refuse with a message (a 400), never panic, and
//! an answer must carry the request's uid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lkguard::webhook::review::{self, Verdict};

fuzz_target!(|data: &[u8]| {
    match review::parse(data) {
        Ok(req) => {
            let answer = req.respond(&Verdict::default());
            let json = serde_json::to_value(&answer).expect("a response serializes");
            assert_eq!(json["response"]["uid"], req.uid.as_str());
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
        }
    }
});
