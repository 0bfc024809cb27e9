//! `[capture]`: what of the wire the switch captures.

use toml::Spanned;

use super::raw::RawCapture;
use super::Ctx;
use crate::model::{Capture, CaptureMode, MAX_CAPTURE_MIB, MAX_SNAPLEN, MIN_SNAPLEN};

pub(super) fn build_capture(ctx: &mut Ctx<'_>, raw: RawCapture) -> Option<Capture> {
    let mut c = Capture::default();
    let mut ok = true;
    if let Some(v) = &raw.mode {
        let all = CaptureMode::ALL.map(|m| (m.as_str(), m));
        match ctx.one_of(v, "capture.mode", &all, "modes") {
            Some(m) => c.mode = m,
            None => ok = false,
        }
    }
    let mut int = |v: &Option<Spanned<i64>>, field: &str, min: u32, max: u32, hint: &str| {
        let v = v.as_ref()?;
        match u32::try_from(*v.get_ref()) {
            Ok(x) if (min..=max).contains(&x) => Some(x),
            _ => {
                ctx.err(
                    v.span(),
                    field,
                    format!("must be from {min} to {max}, got {}", v.get_ref()),
                    Some(hint.to_string()),
                );
                ok = false;
                None
            }
        }
    };
    if let Some(x) = int(
        &raw.snaplen,
        "capture.snaplen",
        MIN_SNAPLEN,
        MAX_SNAPLEN,
        "bytes kept of each frame; the default keeps whole frames",
    ) {
        c.snaplen = x;
    }
    if let Some(x) = int(
        &raw.max_mib,
        "capture.max_mib",
        1,
        MAX_CAPTURE_MIB,
        "the capture file's size cap in MiB, e.g. 64",
    ) {
        c.max_mib = x;
    }
    ok.then_some(c)
}
