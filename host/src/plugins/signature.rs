//! Signed plugin files: with `--plugin-signers`, a `.wasm` loads only if
//! `<name>.wasm.minisig` beside it is a Minisign signature of its bytes by
//! one of the operator's keys.
//!
//! Minisign (Ed25519, the format of the `minisign` tool and of `rsign2`)
//! because its signatures are detached files an operator makes with one
//! command on any system, its public keys are one line the operator can
//! give in a setting, and `minisign-verify` checks them without a
//! dependency of its own. A pinned `sha256` says *which* file may load;
//! a signature says *who* may publish files, so a new release needs no
//! edit of the settings.

use std::path::{Path, PathBuf};

use anyhow::bail;
use minisign_verify::{PublicKey, Signature};

/// The signature's file beside `wasm`: `<name>.wasm.minisig`, as
/// `minisign -Sm <name>.wasm` writes it.
pub fn signature_file(wasm: &Path) -> PathBuf {
    let mut name = wasm.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}

/// Longest signature file read (a real one is about 300 bytes).
pub const MAX_SIGNATURE_BYTES: u64 = 4096;

/// A key the operator trusts to sign plugins.
#[derive(Clone)]
pub struct Signer {
    key: PublicKey,
    /// The key as given (its base64 line): how `/plugins` names it.
    pub text: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// A `--plugin-signers` entry: a Minisign public key (`RW…`, the second
/// line of `minisign.pub`) or the path of a `minisign.pub` file.
pub fn parse_signer(entry: &str) -> Result<Signer, String> {
    let entry = entry.trim();
    if let Ok(key) = PublicKey::from_base64(entry) {
        return Ok(Signer { key, text: entry.to_owned() });
    }
    if entry.starts_with("RW") && !Path::new(entry).exists() {
        return Err(format!("`{entry}` is not a Minisign public key"));
    }
    let text = std::fs::read_to_string(entry)
        .map_err(|e| format!("`{entry}`: neither a Minisign public key (RW…) nor a readable file ({e})"))?;
    let key = PublicKey::decode(&text).map_err(|e| format!("{entry}: not a minisign.pub file ({e})"))?;
    let line = text.lines().map(str::trim).find(|l| l.starts_with("RW")).unwrap_or(entry).to_owned();
    Ok(Signer { key, text: line })
}

/// Checks `bytes` against `signature` (the `.minisig` file's text, if
/// there is one) when signers are set. Returns the signer whose key
/// verified it (`None` when no signers are set).
pub fn check_signature(
    wasm: &Path,
    bytes: &[u8],
    signature: Option<&str>,
    signers: &[Signer],
) -> anyhow::Result<Option<String>> {
    if signers.is_empty() {
        return Ok(None);
    }
    let sig_file = signature_file(wasm);
    let Some(text) = signature else {
        bail!(
            "{}: no signature {} and --plugin-signers is set (sign it: minisign -Sm {})",
            wasm.display(),
            sig_file.display(),
            wasm.display()
        );
    };
    let signature = Signature::decode(text)
        .map_err(|e| anyhow::anyhow!("{}: not a Minisign signature ({e})", sig_file.display()))?;
    if let Some(signer) = signers.iter().find(|s| s.key.verify(bytes, &signature, false).is_ok()) {
        return Ok(Some(signer.text.clone()));
    }
    bail!(
        "{}: {} does not verify with any of the {} keys of --plugin-signers (signed by another key, or the file changed since it was signed); refused before compiling",
        wasm.display(),
        sig_file.display(),
        signers.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by the `minisign` tool: `acemux` signed by this key.
    const KEY: &str = "RWS6v/Q4cwhwT9Uaj6CdEKszC8xWLL0Ojmpxgwutz9TJxEhbICL3Exfm";
    const SIGNATURE: &str = "untrusted comment: signature from minisign secret key
RUS6v/Q4cwhwTxALtdFv6e6hB0WXV2QS0Px2845TCZuIG620TESTMvajeFq5NcfsUFJ6ibc2jbU7Lh7oHho1FTUk5MOc69BQTAI=
trusted comment: acemux test vector
EVopgaOPKsdFwH5ewWg3s2DK73Te/HVLHNEen8fe0sLsDInJjWNvXsxWWRTGtCSyxJniIdvVq9kU6Tum7z8gAg==
";

    #[test]
    fn a_signature_by_a_listed_key_verifies_and_nothing_else_does() {
        let wasm = Path::new("/p/test.wasm");
        let signers = [parse_signer(KEY).unwrap()];
        assert_eq!(
            check_signature(wasm, b"acemux", Some(SIGNATURE), &signers).unwrap().as_deref(),
            Some(KEY)
        );
        let changed = check_signature(wasm, b"acemux!", Some(SIGNATURE), &signers).unwrap_err().to_string();
        assert!(changed.contains("/p/test.wasm.minisig") && changed.contains("does not verify"), "{changed}");
        let unsigned = check_signature(wasm, b"acemux", None, &signers).unwrap_err().to_string();
        assert!(unsigned.contains("no signature /p/test.wasm.minisig"), "{unsigned}");
        let garbage = check_signature(wasm, b"acemux", Some("not a signature"), &signers).unwrap_err();
        assert!(garbage.to_string().contains("not a Minisign signature"), "{garbage}");
        assert_eq!(check_signature(wasm, b"anything", None, &[]).unwrap(), None, "no signers: not checked");
    }

    #[test]
    fn a_signer_is_a_key_or_a_public_key_file() {
        assert!(parse_signer("RWnotakey").unwrap_err().contains("not a Minisign public key"));
        assert!(parse_signer("/nonexistent/minisign.pub").unwrap_err().contains("readable file"));
        let dir = std::env::temp_dir().join(format!("acemux-signer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("minisign.pub");
        std::fs::write(&file, format!("untrusted comment: minisign public key 1F0A\n{KEY}\n")).unwrap();
        assert_eq!(parse_signer(file.to_str().unwrap()).unwrap().text, KEY);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
