//! Keeps or drops PIDs, by number or by what the PMT says they carry.
//!
//! ```toml
//! [config]
//! drop_pids = [0x1FFF]          # always drop these
//! drop_kinds = ["subtitles"]    # video | audio | subtitles | other
//! keep_audio = 1                # keep only the first N audio streams (0 = all)
//! ```
//!
//! PAT, PMTs and the PCR PID are never dropped.

use std::collections::HashSet;

use acemux_plugin_sdk::ts::psi::{StreamKind, parse_pat, parse_pmt};
use acemux_plugin_sdk::{Batch, Filter, Stream, config, warn};
use serde::Deserialize;

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct Config {
    drop_pids: Vec<u16>,
    drop_kinds: Vec<String>,
    keep_audio: usize,
}

pub struct PidFilter {
    config: Config,
    pmt_pids: HashSet<u16>,
    protected: HashSet<u16>,
    dropped: HashSet<u16>,
}

impl PidFilter {
    fn learn(&mut self, batch: &Batch) {
        for p in batch.packets() {
            if let Some(programs) = parse_pat(&p) {
                self.pmt_pids = programs.into_iter().map(|(_, pid)| pid).collect();
            } else if self.pmt_pids.contains(&p.pid())
                && let Some(map) = parse_pmt(&p)
            {
                self.protected.insert(map.pcr_pid);
                let mut audio = 0;
                self.dropped = map
                    .streams
                    .iter()
                    .filter(|s| {
                        let kind = match s.kind {
                            StreamKind::Video => "video",
                            StreamKind::Audio => "audio",
                            StreamKind::Subtitles => "subtitles",
                            StreamKind::Other => "other",
                        };
                        if s.kind == StreamKind::Audio {
                            audio += 1;
                            if self.config.keep_audio > 0 && audio > self.config.keep_audio {
                                return true;
                            }
                        }
                        self.config.drop_kinds.iter().any(|k| k == kind)
                    })
                    .map(|s| s.pid)
                    .collect();
            }
        }
    }
}

impl Filter for PidFilter {
    fn new(_stream: &Stream) -> Self {
        let config = config::<Config>().unwrap_or_else(|e| {
            warn!("{e}; passing everything");
            Config::default()
        });
        Self { config, pmt_pids: HashSet::new(), protected: HashSet::new(), dropped: HashSet::new() }
    }

    fn process(&mut self, batch: &mut Batch) {
        self.learn(batch);
        let (pmts, protected, dropped, by_pid) =
            (&self.pmt_pids, &self.protected, &self.dropped, &self.config.drop_pids);
        batch.retain(|p| {
            let pid = p.pid();
            pid == 0
                || pmts.contains(&pid)
                || protected.contains(&pid)
                || !(dropped.contains(&pid) || by_pid.contains(&pid))
        });
    }
}

acemux_plugin_sdk::export!(PidFilter: filter);

#[cfg(test)]
mod tests {
    use super::*;
    use acemux_plugin_sdk::testing::{set_config, stream};
    use acemux_plugin_sdk::ts::PACKET_SIZE;

    fn packet(pid: u16, payload: &[u8], pusi: bool) -> [u8; PACKET_SIZE] {
        let mut p = [0xFFu8; PACKET_SIZE];
        p[..4].copy_from_slice(&[0x47, (u8::from(pusi) << 6) | (pid >> 8) as u8, pid as u8, 0x10]);
        p[4..4 + payload.len()].copy_from_slice(payload);
        p
    }

    fn section(table: u8, body: &[u8]) -> Vec<u8> {
        let len = 5 + body.len() + 4;
        let mut s = vec![0, table, 0xB0, len as u8, 0, 1, 0xC1, 0, 0];
        s.extend_from_slice(body);
        s.extend_from_slice(&[0; 4]);
        s
    }

    #[test]
    fn drops_subtitles_and_extra_audio_but_never_tables_or_pcr() {
        set_config(r#"{"drop_kinds": ["subtitles"], "keep_audio": 1}"#);
        let pat = packet(0, &section(0, &[0, 1, 0xF0, 0x00]), true);
        let pmt_body = [
            0xE1, 0x01, 0xF0, 0x00, // PCR on 0x101 (an audio PID here, to check protection)
            0x1B, 0xE1, 0x00, 0xF0, 0x00, // video 0x100
            0x0F, 0xE1, 0x01, 0xF0, 0x00, // audio 0x101
            0x0F, 0xE1, 0x02, 0xF0, 0x00, // audio 0x102
            0x06, 0xE1, 0x03, 0xF0, 0x02, 0x56, 0x00, // teletext 0x103
        ];
        let pmt = packet(0x1000, &section(2, &pmt_body), true);
        let es: Vec<[u8; PACKET_SIZE]> =
            [0x100, 0x101, 0x102, 0x103].iter().map(|&pid| packet(pid, &[], false)).collect();
        let mut batch = Batch::from_packets([&pat, &pmt].into_iter().chain(es.iter()));
        let mut f = PidFilter::new(&stream("ab"));
        f.process(&mut batch);
        let pids: Vec<u16> = batch.packets().map(|p| p.pid()).collect();
        assert_eq!(pids, vec![0, 0x1000, 0x100, 0x101]);
    }
}
