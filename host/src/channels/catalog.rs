//! The one channel list every reader sees: the operator's `[[channels]]`
//! and every source's last good channels, merged and numbered.
//!
//! Sources refresh on their own (see [`super::refresh`]) and hand their
//! channels here; each hand-over rebuilds the list and swaps it in whole
//! (an `Arc`), so playlists, the tuner lineup, `/channels.json` and the
//! dashboard read a consistent list without a lock, and a refresh never
//! touches a running stream (streams are keyed by content, not by list).
//!
//! Duplicates (the same content named twice) are merged: the first wins —
//! `[[channels]]` before sources, sources in the order the file lists
//! them, entries in their list's order — and takes the group, logo and
//! `tvg-id` it lacks from the later ones.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Notify;

use super::Channel;
use super::fetch::Validators;
use super::guide::{GuideSlot, GuideSpec, xmltv};
use super::numbers::{Numbers, Wanted};
use super::search::SearchDetails;
use super::source::Source;
use crate::content::ContentKey;
use crate::stream::alternates::{ChannelDirectory, ChannelPlan};

/// Channels listed at most, whatever the sources hold.
pub const MAX_CHANNELS: usize = 50_000;

/// A channel as listed: its number and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub number: u32,
    /// The source's name; none for the operator's own `[[channels]]`.
    pub source: Option<Arc<str>>,
    #[serde(flatten)]
    pub channel: Channel,
    /// What the engine's search says of it, for a search source's channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<Arc<SearchDetails>>,
    /// The name its source gave (`tvg-name`, else its title), before
    /// rules renamed it: guides know it by that name.
    #[serde(skip)]
    pub source_name: Option<String>,
}

/// Every guide's last good programmes at one moment.
struct GuidesNow {
    configured: Vec<Arc<xmltv::Guide>>,
    /// Each source's guide by the source's name (in a stable order: the
    /// cached document is keyed by the guides' generations in turn).
    by_source: std::collections::BTreeMap<String, Arc<xmltv::Guide>>,
}

impl GuidesNow {
    /// A channel's guides in order: `[[guides]]`, then its source's own.
    fn for_channel(&self, listed: &Listed) -> Vec<&xmltv::Guide> {
        let mut guides: Vec<&xmltv::Guide> = self.configured.iter().map(Arc::as_ref).collect();
        if let Some(g) = listed.source.as_deref().and_then(|name| self.by_source.get(name)) {
            guides.push(g);
        }
        guides
    }
}

/// The merged list at one moment.
#[derive(Debug, Default)]
pub struct Listing {
    pub channels: Vec<Listed>,
    /// Entries dropped because an earlier one named the same content.
    pub duplicates: usize,
    /// Entries merged into an earlier channel as its alternates (the same
    /// `tvg-id`, or the same name in one source).
    pub alternates: usize,
    /// Channels left out past [`MAX_CHANNELS`].
    pub left_out: usize,
    /// Tells this list from every other (see [`super::next_generation`]).
    pub generation: u64,
    /// The channels with alternates, by the id of their play key.
    by_play_key: HashMap<String, usize>,
}

impl Listing {
    /// The channel with alternates players ask for by `key`.
    pub fn channel(&self, key: &ContentKey) -> Option<&Listed> {
        self.channels.get(*self.by_play_key.get(&key.id)?)
    }

    /// The listed channels a player asking for `key` plays: the channel
    /// with alternates a channel key names (found by the index: hashing
    /// every channel's key per request would cost milliseconds on a long
    /// list), else those that have `key`'s id among their ids.
    pub fn playing(&self, key: &ContentKey) -> impl Iterator<Item = &Listed> {
        let (indexed, scanned) = match key.key_type {
            crate::content::KeyType::Channel => (self.channel(key), None),
            _ => {
                (None, Some(self.channels.iter().filter(move |l| l.channel.ids().any(|id| id.id == key.id))))
            }
        };
        indexed.into_iter().chain(scanned.into_iter().flatten())
    }
}

/// Where each entry of a list being merged goes. The first entry of a
/// channel wins (`[[channels]]` before sources, sources in the file's
/// order, entries in their list's order); a later entry naming an id
/// already listed is a duplicate (it lends the group, logo and `tvg-id`
/// the first lacks); a later one with the same `tvg-id`, or the same name
/// in the same source, brings its ids as the first one's alternates.
#[derive(Default)]
struct Merging {
    /// Every id listed → the channel that has it.
    by_id: HashMap<ContentKey, usize>,
    by_tvg_id: HashMap<String, usize>,
    /// (source, name) → channel, for sources' channels.
    by_source_name: HashMap<(Arc<str>, String), usize>,
    duplicates: usize,
    alternates: usize,
}

impl Merging {
    /// The channel listed already that `channel` belongs to, if any.
    fn home(&self, channel: &Channel, source: Option<&str>) -> Option<usize> {
        channel
            .ids()
            .find_map(|k| self.by_id.get(k))
            .or_else(|| channel.tvg_id.as_ref().and_then(|t| self.by_tvg_id.get(t)))
            .or_else(|| self.by_source_name.get(&(Arc::from(source?), channel.name.clone())))
            .copied()
    }

    /// Lists `channel` as channel number `at` of the merged list.
    fn file(&mut self, channel: &Channel, source: Option<&str>, at: usize) {
        for key in channel.ids() {
            self.by_id.insert(key.clone(), at);
        }
        if let Some(tvg_id) = &channel.tvg_id {
            self.by_tvg_id.entry(tvg_id.clone()).or_insert(at);
        }
        if let Some(source) = source {
            self.by_source_name.entry((Arc::from(source), channel.name.clone())).or_insert(at);
        }
    }

    /// Merges a later entry into `kept`, channel number `at`.
    fn merge(&mut self, kept: &mut Channel, at: usize, later: Channel, source: Option<&str>) {
        let fresh: Vec<ContentKey> = later.ids().filter(|k| !self.by_id.contains_key(*k)).cloned().collect();
        if fresh.is_empty() {
            self.duplicates += 1;
        } else {
            self.alternates += 1;
            if kept.identity.is_none() {
                kept.identity = Some(match (&kept.tvg_id, source) {
                    (Some(tvg_id), _) => format!("tvg-id:{tvg_id}").into(),
                    (None, source) => {
                        format!("source:{}\u{0}{}", source.unwrap_or_default(), kept.name).into()
                    }
                });
            }
            for key in fresh {
                if kept.add_alternate(key.clone()) {
                    self.by_id.insert(key, at);
                }
            }
        }
        kept.group = kept.group.take().or(later.group);
        kept.logo = kept.logo.take().or(later.logo);
        if kept.tvg_id.is_none()
            && let Some(tvg_id) = later.tvg_id
        {
            self.by_tvg_id.entry(tvg_id.clone()).or_insert(at);
            kept.tvg_id = Some(tvg_id);
        }
    }
}

/// A channel a source gave, after its rules.
#[derive(Debug, Clone)]
pub struct SourceChannel {
    pub channel: Channel,
    /// The source's own number for it (`tvg-chno`), a suggestion.
    pub suggested_number: Option<u32>,
    pub search: Option<Arc<SearchDetails>>,
    /// See [`Listed::source_name`].
    pub source_name: Option<String>,
}

/// What acemux knows of one source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceState {
    /// Its last good channels.
    #[serde(skip)]
    pub channels: Arc<Vec<SourceChannel>>,
    /// The guide the list's header names (`url-tvg`/`x-tvg-url`).
    pub guide_url: Option<String>,
    /// What to ask the server with next time.
    #[serde(skip)]
    pub validators: Validators,
    #[serde(serialize_with = "unix_time")]
    pub last_attempt: Option<SystemTime>,
    #[serde(serialize_with = "unix_time")]
    pub last_success: Option<SystemTime>,
    /// The last refresh's error; none once one succeeds.
    pub error: Option<String>,
    /// Entries of the last good read that named no AceStream content,
    /// were broken, or were past the bounds.
    pub skipped: usize,
    /// Entries its rules left out.
    pub excluded: usize,
    pub refreshes: u64,
    pub failures: u64,
    /// Answers that said nothing changed (`304`).
    pub not_modified: u64,
}

fn unix_time<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()) {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// One source and what is known of it.
pub struct SourceSlot {
    pub spec: Source,
    state: Mutex<SourceState>,
    /// The guide its list names, once it named one.
    guide: Mutex<Option<Arc<GuideSlot>>>,
}

impl SourceSlot {
    /// A copy of what is known now.
    pub fn state(&self) -> SourceState {
        self.state.lock().clone()
    }

    /// Its guide, made anew when the list names another URL.
    pub fn guide_at(&self, spec: GuideSpec) -> Arc<GuideSlot> {
        let mut guide = self.guide.lock();
        match guide.as_ref() {
            Some(slot) if slot.spec == spec => slot.clone(),
            _ => guide.insert(Arc::new(GuideSlot::new(spec))).clone(),
        }
    }

    pub fn guide(&self) -> Option<Arc<GuideSlot>> {
        self.guide.lock().clone()
    }
}

/// See the module docs.
pub struct Catalog {
    /// The operator's `[[channels]]`.
    hand: Vec<Channel>,
    sources: Vec<SourceSlot>,
    /// The `[[guides]]`, in the file's order.
    guides: Vec<Arc<GuideSlot>>,
    numbers: Mutex<Numbers>,
    listing: ArcSwap<Listing>,
    /// The guide announced in playlists when acemux serves none itself.
    pub epg_url: Option<String>,
    /// Wakes the writer of the numbers file.
    numbers_changed: Notify,
    /// One rebuild at a time, so a rebuild that read the sources earlier
    /// never swaps in its list after one that read them later.
    rebuilding: Mutex<()>,
    /// The last `/epg.xml`, and what it was made of.
    guide_document: Mutex<Option<GuideDocument>>,
    /// Where each M3U source's last good list is kept (`<state dir>/sources`).
    kept_lists: Option<std::path::PathBuf>,
}

/// A rendered guide and the generations of the list and guides it was
/// rendered from.
struct GuideDocument {
    made_of: Vec<u64>,
    gzip: bytes::Bytes,
}

impl Catalog {
    /// The list of `hand` alone, until sources hand theirs over; numbers
    /// read from `state_dir`. Blocking (reads the numbers file).
    pub fn new(
        hand: Vec<Channel>,
        sources: Vec<Source>,
        guides: Vec<GuideSpec>,
        epg_url: Option<String>,
        state_dir: Option<&Path>,
    ) -> anyhow::Result<Arc<Self>> {
        let catalog = Arc::new(Self {
            hand,
            sources: sources
                .into_iter()
                .map(|spec| SourceSlot { spec, state: Mutex::default(), guide: Mutex::default() })
                .collect(),
            guides: guides.into_iter().map(|spec| Arc::new(GuideSlot::new(spec))).collect(),
            numbers: Mutex::new(Numbers::load(state_dir)?),
            listing: ArcSwap::default(),
            epg_url,
            numbers_changed: Notify::new(),
            rebuilding: Mutex::new(()),
            guide_document: Mutex::new(None),
            kept_lists: state_dir.map(|dir| dir.join("sources")),
        });
        catalog.rebuild();
        Ok(catalog)
    }

    /// The list now.
    pub fn current(&self) -> Arc<Listing> {
        self.listing.load_full()
    }

    pub fn sources(&self) -> &[SourceSlot] {
        &self.sources
    }

    pub fn guides(&self) -> &[Arc<GuideSlot>] {
        &self.guides
    }

    /// Where source `index`'s last good list is kept, with a state
    /// directory: `<state dir>/sources/<the name in hex>.m3u`.
    pub fn kept_list(&self, index: usize) -> Option<std::path::PathBuf> {
        let name = &self.sources[index].spec.name;
        let file: String = name.bytes().map(|b| format!("{b:02x}")).collect();
        Some(self.kept_lists.as_ref()?.join(format!("{file}.m3u")))
    }

    /// Whether every source has been tried once (guides read before that
    /// would miss their channels).
    pub fn sources_tried(&self) -> bool {
        self.sources.iter().all(|s| s.state.lock().last_attempt.is_some())
    }

    /// `/epg.xml` for the list and guides now, gzipped. The last document
    /// is kept (compressed: a guide of tens of megabytes of XML is a few
    /// megabytes) until the list or a guide changes, and one request
    /// renders it while the others wait for it. Blocking.
    pub fn guide_document(&self) -> std::io::Result<bytes::Bytes> {
        let listing = self.current();
        let guides = self.guides_now();
        let made_of: Vec<u64> = std::iter::once(listing.generation)
            .chain(guides.configured.iter().chain(guides.by_source.values()).map(|g| g.generation))
            .collect();
        let mut kept = self.guide_document.lock();
        if let Some(document) = kept.as_ref().filter(|d| d.made_of == made_of) {
            return Ok(document.gzip.clone());
        }
        let xml = super::guide::write::render(&listing, |listed| guides.for_channel(listed));
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(xml.as_bytes())?;
        let gzip = bytes::Bytes::from(encoder.finish()?);
        *kept = Some(GuideDocument { made_of, gzip: gzip.clone() });
        Ok(gzip)
    }

    /// The programmes of `listed` that end after `from`, at most `limit`,
    /// from the guides as `/epg.xml` takes them (else what the engine's
    /// search said), for the Xtream Codes API's short guide.
    pub fn schedule(&self, listed: &Listed, from: i64, limit: usize) -> Vec<xmltv::Programme> {
        let guides = self.guides_now();
        match super::guide::write::programmes_of(listed, &guides.for_channel(listed)) {
            Some(list) => list.iter().filter(|p| p.stop > from).take(limit).cloned().collect(),
            None => listed
                .search
                .iter()
                .flat_map(|s| &s.epg)
                .filter(|e| e.stop > from)
                .take(limit)
                .map(|e| xmltv::Programme {
                    start: e.start,
                    stop: e.stop,
                    title: e.title.clone(),
                    sub_title: None,
                    desc: None,
                    categories: Vec::new(),
                    icon: None,
                    episode_num: None,
                })
                .collect(),
        }
    }

    fn guides_now(&self) -> GuidesNow {
        GuidesNow {
            configured: self.guides.iter().map(|g| g.state().guide).collect(),
            by_source: self
                .sources
                .iter()
                .filter_map(|s| Some((s.spec.name.clone(), s.guide()?.state().guide)))
                .collect(),
        }
    }

    /// Records a refresh of source `index`: `update` changes what is known
    /// of it; the list is rebuilt when its channels changed. Blocking
    /// (see [`Catalog::rebuild`]).
    pub fn update_source(&self, index: usize, update: impl FnOnce(&mut SourceState)) {
        let changed = {
            let mut state = self.sources[index].state.lock();
            let before = Arc::as_ptr(&state.channels);
            update(&mut state);
            !std::ptr::eq(before, Arc::as_ptr(&state.channels))
        };
        if changed {
            self.rebuild();
        }
    }

    /// Merges, numbers and swaps in the list. CPU work in proportion to
    /// the channels: callers are off the runtime threads.
    fn rebuild(&self) {
        let _one_at_a_time = self.rebuilding.lock();
        let mut merged: Vec<(Listed, Option<u32>)> = Vec::new();
        let mut merging = Merging::default();
        let mut left_out = 0;
        let mut add = |channel: Channel,
                       source: Option<Arc<str>>,
                       suggested: Option<u32>,
                       search: Option<Arc<SearchDetails>>,
                       source_name: Option<String>| {
            match merging.home(&channel, source.as_deref()) {
                Some(home) => merging.merge(&mut merged[home].0.channel, home, channel, source.as_deref()),
                None if merged.len() < MAX_CHANNELS => {
                    merging.file(&channel, source.as_deref(), merged.len());
                    merged.push((Listed { number: 0, source, channel, search, source_name }, suggested));
                }
                None => left_out += 1,
            }
        };
        for channel in &self.hand {
            add(channel.clone(), None, None, None, None);
        }
        for slot in &self.sources {
            let channels = slot.state.lock().channels.clone();
            let name: Arc<str> = Arc::from(slot.spec.name.as_str());
            for c in channels.iter() {
                add(
                    c.channel.clone(),
                    Some(name.clone()),
                    c.suggested_number,
                    c.search.clone(),
                    c.source_name.clone(),
                );
            }
        }
        let wanted: Vec<Wanted<'_>> = merged
            .iter()
            .map(|(l, suggested)| Wanted {
                key: &l.channel.key,
                pinned: l.channel.number,
                suggested: *suggested,
            })
            .collect();
        let (assigned, changed) = self.numbers.lock().assign(&wanted);
        let mut channels: Vec<Listed> = merged.into_iter().map(|(l, _)| l).collect();
        for (listed, number) in channels.iter_mut().zip(assigned) {
            listed.number = number;
        }
        let by_play_key = channels
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.channel.alternates.is_empty())
            .map(|(i, l)| (l.channel.play_key().id, i))
            .collect();
        self.listing.store(Arc::new(Listing {
            channels,
            duplicates: merging.duplicates,
            alternates: merging.alternates,
            left_out,
            generation: super::next_generation(),
            by_play_key,
        }));
        if changed {
            self.numbers_changed.notify_one();
        }
    }

    /// Writes the numbers file whenever numbers change, until `stop`.
    pub async fn keep_numbers(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        // The first list was numbered before this task ran.
        self.write_numbers().await;
        loop {
            tokio::select! {
                _ = self.numbers_changed.notified() => self.write_numbers().await,
                _ = stop.cancelled() => return,
            }
        }
    }

    async fn write_numbers(&self) {
        let Some((path, bytes)) = self.numbers.lock().to_write() else { return };
        let shown = path.display().to_string();
        let written = tokio::task::spawn_blocking(move || super::write_whole(&path, &bytes)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(file = shown, error = %e, "cannot write the channel numbers"),
            Err(e) => tracing::warn!(error = %e, "channel numbers writer failed"),
        }
    }
}

impl ChannelDirectory for Catalog {
    fn plan(&self, channel: &ContentKey) -> Option<ChannelPlan> {
        let listing = self.current();
        let listed = listing.channel(channel)?;
        Some(ChannelPlan { name: listed.channel.name.clone(), ids: listed.channel.ids().cloned().collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::KeyType;

    fn key(n: u32) -> ContentKey {
        ContentKey::new(KeyType::ContentId, format!("{n:040}"))
    }

    fn entry(name: &str, n: u32, tvg_id: Option<&str>) -> SourceChannel {
        let mut channel = Channel::new(name.into(), key(n));
        channel.tvg_id = tvg_id.map(str::to_owned);
        SourceChannel { channel, suggested_number: None, search: None, source_name: None }
    }

    #[test]
    fn the_same_tvg_id_or_the_same_name_in_one_source_makes_alternates_and_the_same_id_a_duplicate() {
        let sources = toml::from_str::<toml::Value>(
            "[[sources]]\nname = \"a\"\nkind = \"m3u\"\npath = \"/a\"\n[[sources]]\nname = \"b\"\nkind = \"m3u\"\npath = \"/b\"\n",
        )
        .unwrap();
        let sources = super::super::source::sources_from_file(&sources["sources"]).unwrap();
        let mut hand = Channel::new("Mine".into(), key(1));
        hand.tvg_id = Some("mine.tv".into());
        hand.identity = Some("channel:Mine".into());
        let catalog = Catalog::new(vec![hand], sources, Vec::new(), None, None).unwrap();
        catalog.update_source(0, |s| {
            s.channels = Arc::new(vec![
                entry("Other", 2, Some("mine.tv")), // an alternate of Mine (tvg-id)
                entry("News", 3, None),
                entry("News", 4, None),  // an alternate of News (same name, same source)
                entry("Again", 3, None), // a duplicate (id 3 is listed)
            ])
        });
        catalog.update_source(1, |s| {
            s.channels = Arc::new(vec![
                entry("News", 5, None), // another source: a channel of its own
                entry("Mine too", 6, Some("mine.tv")),
            ])
        });
        let listing = catalog.current();
        let ids = |name: &str| {
            let c = &listing.channels.iter().find(|l| l.channel.name == name).unwrap().channel;
            c.ids().map(|k| k.id[36..].to_owned()).collect::<Vec<_>>()
        };
        assert_eq!(listing.channels.len(), 3);
        assert_eq!(ids("Mine"), ["0001", "0002", "0006"]);
        assert_eq!(ids("News"), ["0003", "0004"]);
        assert_eq!((listing.alternates, listing.duplicates), (3, 1));
        // The channel's key comes from what names it, whatever its ids.
        let mine = &listing.channels[0].channel;
        assert_eq!(mine.play_key(), ContentKey::channel("channel:Mine"));
        let plan = catalog.plan(&mine.play_key()).unwrap();
        assert_eq!((plan.name.as_str(), plan.ids.len()), ("Mine", 3));
        // A channel with one id is asked for by it, and has no plan.
        let single = listing.channels.iter().find(|l| l.channel.alternates.is_empty()).unwrap();
        assert_eq!(single.channel.play_key(), key(5));
        assert!(catalog.plan(&ContentKey::channel("nothing")).is_none());
    }
}
