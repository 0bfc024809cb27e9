//! SCSI-3 persistent reservations as sg_persist (sg3-utils) is asked and
//! answers: the arguments of each action the fencing takes, and its
//! READ KEYS and READ RESERVATION output read into a [`PrState`].

use crate::history::PrState;

/// Write Exclusive, Registrants Only: every registered host may write;
/// fence_scsi's reservation type.
pub const WERO: u8 = 5;

/// A PERSISTENT RESERVE OUT service action of the fence_scsi protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Register `key` for the I_T nexus the command goes through.
    Register { key: u64 },
    /// Take the reservation (type [`WERO`]) as the holder of `key`.
    Reserve { key: u64 },
    /// As the holder of `key`, remove `victim`'s registration (and take
    /// the reservation if it held it), aborting its commands in the task
    /// set: the fence.
    PreemptAbort { key: u64, victim: u64 },
}

impl Action {
    /// Its name in the history.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Register { .. } => "register",
            Action::Reserve { .. } => "reserve",
            Action::PreemptAbort { .. } => "preempt-and-abort",
        }
    }

    /// sg_persist's arguments for it (the device comes last). No APTPL:
    /// the reservation need not outlive the target.
    pub fn args(&self) -> Vec<String> {
        let key = |k: u64| format!("0x{k:x}");
        let mut args = vec!["--no-inquiry".to_string(), "--out".to_string()];
        match *self {
            Action::Register { key: k } => {
                args.extend(["--register".into(), format!("--param-sark={}", key(k))]);
            }
            Action::Reserve { key: k } => args.extend([
                "--reserve".into(),
                format!("--param-rk={}", key(k)),
                format!("--prout-type={WERO}"),
            ]),
            Action::PreemptAbort { key: k, victim } => args.extend([
                "--preempt-abort".into(),
                format!("--param-rk={}", key(k)),
                format!("--param-sark={}", key(victim)),
                format!("--prout-type={WERO}"),
            ]),
        }
        args
    }
}

/// sg_persist's arguments to read the registered keys, and the reservation.
pub const READ_KEYS: [&str; 3] = ["--no-inquiry", "--in", "--read-keys"];
pub const READ_RESERVATION: [&str; 3] = ["--no-inquiry", "--in", "--read-reservation"];

/// The state from sg_persist's READ KEYS and READ RESERVATION output;
/// `None` when either is not what sg_persist prints.
pub fn parse_state(keys: &str, reservation: &str) -> Option<PrState> {
    let generation = |text: &str| -> Option<u32> {
        let g = text.split("PR generation=0x").nth(1)?;
        let hex: String = g.chars().take_while(char::is_ascii_hexdigit).collect();
        u32::from_str_radix(&hex, 16).ok()
    };
    let mut state = PrState {
        generation: generation(keys)?,
        ..PrState::default()
    };
    if !keys.contains("there are NO registered reservation keys") {
        let mut lines = keys.lines().skip_while(|l| !l.contains("PR generation="));
        let head = lines.next()?;
        if !head.contains("registered reservation key") {
            return None;
        }
        for line in lines {
            let word = line.trim();
            if word.is_empty() {
                continue;
            }
            let hex = word.strip_prefix("0x")?;
            state
                .keys
                .push(format!("0x{:x}", u64::from_str_radix(hex, 16).ok()?));
        }
    }
    generation(reservation)?;
    if !reservation.contains("there is NO reservation held") {
        if !reservation.contains("Reservation follows:") {
            return None;
        }
        let holder = reservation
            .lines()
            .find_map(|l| l.trim().strip_prefix("Key=0x"))?;
        state.holder = Some(format!("0x{:x}", u64::from_str_radix(holder, 16).ok()?));
        state.kind = reservation
            .lines()
            .find_map(|l| l.split_once("type: "))
            .map(|(_, t)| t.trim().to_string());
    }
    Some(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_holder_are_read_from_what_sg_persist_prints() {
        let keys = "  PR generation=0x3, 2 registered reservation keys follow:\n    0x6963000000000001\n    0x6963000000000002\n";
        let res = "  PR generation=0x3, Reservation follows:\n    Key=0x6963000000000001\n    scope: LU_SCOPE,  type: Write Exclusive, registrants only\n";
        let s = parse_state(keys, res).unwrap();
        assert_eq!(s.generation, 3);
        assert_eq!(s.keys, ["0x6963000000000001", "0x6963000000000002"]);
        assert_eq!(s.holder.as_deref(), Some("0x6963000000000001"));
        assert_eq!(s.kind.as_deref(), Some("Write Exclusive, registrants only"));
        let none = parse_state(
            "  PR generation=0x0, there are NO registered reservation keys\n",
            "  PR generation=0x0, there is NO reservation held\n",
        )
        .unwrap();
        assert_eq!((none.keys.len(), none.holder), (0, None));
        // One key.
        let one = parse_state(
            "  PR generation=0x1, 1 registered reservation key follows:\n    0x2\n",
            "  PR generation=0x1, there is NO reservation held\n",
        )
        .unwrap();
        assert_eq!(one.keys, ["0x2"]);
        // Not sg_persist's words: no state rather than a wrong one.
        assert_eq!(parse_state("sg_persist: error opening file", res), None);
        assert_eq!(parse_state(keys, "PR in: command failed"), None);
        assert_eq!(
            parse_state(&keys.replace("0x6963000000000002", "zz"), res),
            None
        );
    }

    #[test]
    fn the_fence_is_a_preempt_and_abort_of_the_victim_s_key_as_wero() {
        let a = Action::PreemptAbort {
            key: 0x2,
            victim: 0x1,
        };
        assert_eq!(
            a.args(),
            [
                "--no-inquiry",
                "--out",
                "--preempt-abort",
                "--param-rk=0x2",
                "--param-sark=0x1",
                "--prout-type=5"
            ]
        );
        assert_eq!(
            Action::Register { key: 0x1 }.args()[2..],
            ["--register", "--param-sark=0x1"]
        );
        assert!(!a.args().iter().any(|w| w.contains("aptpl")));
    }
}
