//! Settings of the plugin host: the directory it watches, where compiled
//! plugins are kept, and which compiler makes native code of them. (Each
//! plugin's own settings are its `<name>.toml`: [`super::settings`].)

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::signature::Signer;
use crate::values::{self, OrNone};

/// wasmtime's compiler for plugins: Cranelift optimises (slower to
/// compile, faster calls); Winch, its baseline compiler, compiles in one
/// pass (faster first loads of big components, slower calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginCompiler {
    Cranelift,
    Winch,
    /// Winch for a component the compile cache does not know (live at
    /// once), then Cranelift in the background, swapped in when done.
    Tiered,
}

const COMPILERS: &[(&str, PluginCompiler)] = &[
    ("cranelift", PluginCompiler::Cranelift),
    ("winch", PluginCompiler::Winch),
    ("tiered", PluginCompiler::Tiered),
];

/// See the module docs.
#[derive(Debug, Clone, clap::Args)]
pub struct PluginHostSettings {
    /// Plugin directory (`*.wasm` + optional `<name>.toml`), created if
    /// missing, watched and hot-reloaded; `none` turns plugins off.
    #[arg(id = "plugins_dir", long = "plugins", env = "ACEMUX_PLUGINS_DIR", default_value = "plugins.d", value_parser = values::path_or_none)]
    pub plugins_dir: OrNone<PathBuf>,
    /// Directory where compiled plugins are kept across loads and restarts
    /// (owner-only, never inside the plugin directory), so known code loads
    /// at once; `none` compiles every load
    /// [default: `$XDG_CACHE_HOME/acemux/plugins` (else `~/.cache/acemux/plugins`)].
    #[arg(long, env = "ACEMUX_PLUGIN_CACHE", value_parser = values::path_or_none)]
    pub plugin_cache: Option<OrNone<PathBuf>>,
    /// `cranelift` (optimising: faster calls), `winch` (baseline: first
    /// loads of big components several times faster, calls slower) or
    /// `tiered` (new code: Winch at once, then Cranelift in the background,
    /// swapped in at a call or batch boundary) compiles plugins.
    #[arg(long, env = "ACEMUX_PLUGIN_COMPILER", default_value = "cranelift", value_parser = values::choice(COMPILERS))]
    pub plugin_compiler: PluginCompiler,
    /// Refuse any plugin whose `<name>.toml` does not pin its file's
    /// digest (`sha256 = "…"`); a pinned digest is checked either way.
    #[arg(long, env = "ACEMUX_PLUGINS_REQUIRE_DIGEST", default_value = "off", num_args = 0..=1, default_missing_value = "on", action = clap::ArgAction::Set, value_parser = values::on_off)]
    pub plugins_require_digest: bool,
    /// Minisign public keys (`RW…`) or `minisign.pub` files, comma-separated:
    /// when set, a plugin loads only if `<name>.wasm.minisig` beside it is
    /// one of these keys' signature of its file (`minisign -Sm <name>.wasm`)
    /// [default: none].
    #[arg(long, env = "ACEMUX_PLUGIN_SIGNERS", value_delimiter = ',', value_parser = super::signature::parse_signer)]
    pub plugin_signers: Vec<Signer>,
}

impl PluginHostSettings {
    /// The compile cache directory: the one named, else the default
    /// (`None`: off).
    pub fn cache_dir(&self) -> Option<PathBuf> {
        match &self.plugin_cache {
            Some(named) => named.as_ref().cloned(),
            None => default_cache_dir(),
        }
    }

    /// The operator named the cache directory (a default that cannot be
    /// created only turns the cache off; a named one is an error).
    pub fn cache_named(&self) -> bool {
        self.plugin_cache.is_some()
    }

    /// What only two settings together can make wrong.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let (Some(cache), Some(plugins)) = (self.cache_dir(), self.plugins_dir.as_ref())
            && absolute(&cache).starts_with(absolute(plugins))
        {
            anyhow::bail!(
                "invalid setting {}: {} is inside the plugin directory {}; compiled plugins are native code \
                 that is loaded unchecked, so they must not sit where plugin files are dropped",
                values::setting_names::<Self>("plugin_cache"),
                cache.display(),
                plugins.display()
            );
        }
        Ok(())
    }
}

/// `$XDG_CACHE_HOME/acemux/plugins`, else `~/.cache/acemux/plugins`, else
/// none.
fn default_cache_dir() -> Option<PathBuf> {
    let base =
        std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()).map(PathBuf::from).or_else(|| {
            std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("acemux").join("plugins"))
}

/// `path` made absolute against the working directory (not resolved: it
/// may not exist yet).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
