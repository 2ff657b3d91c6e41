//! Templates parsed once and shared: every stack created from the same
//! template, environment and files holds the same `Arc<Prepared>`, so a
//! stack costs only what differs from its siblings (its parameters and the
//! state of its resources).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use dashmap::DashMap;
use heat::{Environment, Errors, Files, Options, StackTemplate};
use sha2::{Digest, Sha256};

/// A template with its environment and files, parsed and checked as far as
/// possible without parameter values.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The template text as given.
    pub template_text: String,
    /// The environment text as given.
    pub environment_text: Option<String>,
    /// The parsed template.
    pub template: StackTemplate,
    /// Resource names, in template order (shared by every stack's state).
    pub names: Vec<Arc<str>>,
    /// Each resource's `type` as written, parallel to `names`.
    pub types: Vec<Arc<str>>,
    /// Output keys and descriptions, in template order.
    pub outputs: Vec<(Arc<str>, Arc<str>)>,
    /// The template's description (`""` without one, as Heat shows it).
    pub description: Arc<str>,
    digest: OnceLock<String>,
}

impl Prepared {
    /// Parses a template as Heat does at create time.
    pub(super) fn parse(
        template_text: &str,
        environment_text: Option<&str>,
        files: &BTreeMap<String, String>,
    ) -> Result<Prepared, Errors> {
        let environment = match environment_text {
            Some(text) if !text.trim().is_empty() => Environment::parse(text)?,
            _ => Environment::new(),
        };
        let files: Files = files.clone();
        let template = StackTemplate::parse(template_text, environment, files, Options::heat())?;
        let t = template.template();
        let names = t.resources.keys().map(|n| Arc::from(n.as_str())).collect();
        let types = t
            .resources
            .values()
            .map(|r| Arc::from(r.type_name.as_str()))
            .collect();
        let outputs = t
            .outputs
            .iter()
            .map(|(k, o)| {
                let d = o.description.as_deref().unwrap_or("No description given");
                (Arc::from(k.as_str()), Arc::from(d))
            })
            .collect();
        let description = Arc::from(t.description.as_deref().unwrap_or(""));
        Ok(Prepared {
            template_text: template_text.to_string(),
            environment_text: environment_text.map(str::to_string),
            template,
            names,
            types,
            outputs,
            description,
            digest: OnceLock::new(),
        })
    }

    /// The `files` map.
    pub(super) fn files(&self) -> &Files {
        self.template.files()
    }

    /// The shared name of resource `name`, if the template has it.
    pub(super) fn name(&self, name: &str) -> Option<&Arc<str>> {
        self.names.iter().find(|n| &***n == name)
    }

    /// The `type` as written of resource `name`.
    pub(super) fn type_of(&self, name: &str) -> Option<&Arc<str>> {
        let i = self.names.iter().position(|n| &**n == name)?;
        self.types.get(i)
    }

    /// A content digest (hex SHA-256 of template, environment and files),
    /// naming the template in the state dir.
    pub(super) fn digest(&self) -> &str {
        self.digest.get_or_init(|| {
            let mut h = Sha256::new();
            let mut part = |tag: &[u8], text: &str| {
                h.update(tag);
                h.update((text.len() as u64).to_le_bytes());
                h.update(text.as_bytes());
            };
            part(b"t", &self.template_text);
            part(b"e", self.environment_text.as_deref().unwrap_or(""));
            for (k, v) in self.files() {
                part(b"k", k);
                part(b"v", v);
            }
            h.finalize().iter().map(|b| format!("{b:02x}")).collect()
        })
    }

    fn same_as(&self, t: &str, e: Option<&str>, f: &BTreeMap<String, String>) -> bool {
        self.template_text == t
            && self.environment_text.as_deref().unwrap_or("") == e.unwrap_or("")
            && self.files() == f
    }
}

/// Parsed templates by content, held weakly: a template lives as long as
/// some stack uses it.
#[derive(Default)]
pub(crate) struct TemplateCache {
    map: DashMap<u64, Vec<Weak<Prepared>>>,
    inserts: AtomicUsize,
}

fn key(t: &str, e: Option<&str>, f: &BTreeMap<String, String>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    t.hash(&mut h);
    e.unwrap_or("").hash(&mut h);
    f.hash(&mut h);
    h.finish()
}

impl TemplateCache {
    /// The prepared template for this text, parsed now if no live stack
    /// shares it.
    pub(super) fn get(
        &self,
        template: &str,
        environment: Option<&str>,
        files: &BTreeMap<String, String>,
    ) -> Result<Arc<Prepared>, Errors> {
        let k = key(template, environment, files);
        if let Some(found) = self.lookup(k, template, environment, files) {
            return Ok(found);
        }
        // Parse outside any map lock: parsing can take a millisecond.
        let parsed = Arc::new(Prepared::parse(template, environment, files)?);
        let mut entry = self.map.entry(k).or_default();
        entry.retain(|w| w.strong_count() > 0);
        for w in entry.iter() {
            if let Some(p) = w.upgrade() {
                if p.same_as(template, environment, files) {
                    return Ok(p);
                }
            }
        }
        entry.push(Arc::downgrade(&parsed));
        drop(entry);
        if self.inserts.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            self.map.retain(|_, v| {
                v.retain(|w| w.strong_count() > 0);
                !v.is_empty()
            });
        }
        Ok(parsed)
    }

    /// Shares an already parsed template (one read back from the state dir).
    pub(super) fn adopt(&self, prepared: Prepared) -> Arc<Prepared> {
        let k = key(
            &prepared.template_text,
            prepared.environment_text.as_deref(),
            prepared.files(),
        );
        let p = Arc::new(prepared);
        self.map.entry(k).or_default().push(Arc::downgrade(&p));
        p
    }

    fn lookup(
        &self,
        k: u64,
        t: &str,
        e: Option<&str>,
        f: &BTreeMap<String, String>,
    ) -> Option<Arc<Prepared>> {
        let entry = self.map.get(&k)?;
        entry
            .iter()
            .filter_map(Weak::upgrade)
            .find(|p| p.same_as(t, e, f))
    }

    /// How many distinct templates are alive.
    pub(super) fn len(&self) -> usize {
        self.map
            .iter()
            .map(|e| e.iter().filter(|w| w.strong_count() > 0).count())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "heat_template_version: 2018-08-31\nresources:\n  a: {type: OS::Heat::None}\n";

    #[test]
    fn same_text_is_parsed_once_and_shared() {
        let cache = TemplateCache::default();
        let files = BTreeMap::new();
        let a = cache.get(T, None, &files).unwrap();
        let b = cache.get(T, Some(""), &files).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let c = cache.get(&format!("{T}\n"), None, &files).unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(cache.len(), 2);
        drop((a, b));
        assert_eq!(cache.len(), 1, "a template no stack holds is let go");
        assert_eq!(c.names.len(), 1);
        assert_eq!(c.digest().len(), 64);
    }

    #[test]
    fn bad_templates_give_heats_error() {
        let cache = TemplateCache::default();
        let e = cache
            .get(
                "heat_template_version: 1999-01-01\n",
                None,
                &BTreeMap::new(),
            )
            .unwrap_err();
        assert_eq!(
            e.first().unwrap().kind.heat_type(),
            "InvalidTemplateVersion"
        );
    }
}
