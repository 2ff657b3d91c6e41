//! Stacks by project (tenant): a dashmap of projects, each with its stacks
//! by id and its live stacks by name. Deleted stacks stay readable by id
//! for a while (as Heat keeps them), then are forgotten.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use uuid::Uuid;

use super::state::StackCell;

/// One project's stacks.
#[derive(Default)]
pub(crate) struct Project {
    /// Every stack (deleted ones until they are purged), by id.
    pub stacks: DashMap<Uuid, Arc<StackCell>>,
    /// Live stacks by name (a name is free again once its stack is deleted).
    pub names: DashMap<Arc<str>, Uuid>,
}

/// All stacks.
#[derive(Default)]
pub(crate) struct Store {
    projects: DashMap<Arc<str>, Arc<Project>>,
    deleted: Mutex<VecDeque<(Instant, Arc<str>, Uuid)>>,
}

impl Store {
    /// The project, made on first use.
    pub(super) fn project(&self, name: &str) -> Arc<Project> {
        if let Some(p) = self.projects.get(name) {
            return p.clone();
        }
        self.projects
            .entry(Arc::from(name))
            .or_insert_with(|| Arc::new(Project::default()))
            .clone()
    }

    /// The project, if it has ever had a stack.
    pub(super) fn existing(&self, name: &str) -> Option<Arc<Project>> {
        self.projects.get(name).map(|p| p.clone())
    }

    /// The shared `Arc<str>` of a project's name.
    pub(super) fn project_name(&self, name: &str) -> Arc<str> {
        match self.projects.get(name) {
            Some(p) => p.key().clone(),
            None => {
                self.project(name);
                self.projects
                    .get(name)
                    .map(|p| p.key().clone())
                    .unwrap_or_else(|| Arc::from(name))
            }
        }
    }

    /// A stack by project and id.
    pub(super) fn get(&self, project: &str, id: &Uuid) -> Option<Arc<StackCell>> {
        self.projects
            .get(project)?
            .stacks
            .get(id)
            .map(|c| c.clone())
    }

    /// Every stack, for start-up and statistics.
    pub(super) fn all(&self) -> Vec<Arc<StackCell>> {
        let mut out = Vec::new();
        for p in self.projects.iter() {
            out.extend(p.stacks.iter().map(|c| c.clone()));
        }
        out
    }

    /// A stack was deleted: free its name now, forget it after `retention`
    /// (and forget those deleted longer ago).
    pub(super) fn deleted(&self, cell: &StackCell, retention: Duration) {
        if let Some(p) = self.projects.get(&*cell.project) {
            p.names.remove_if(&*cell.name, |_, id| *id == cell.id);
        }
        let now = Instant::now();
        let mut q = self.deleted.lock().unwrap_or_else(|p| p.into_inner());
        q.push_back((now + retention, cell.project.clone(), cell.id));
        while let Some((due, _, _)) = q.front() {
            if *due > now {
                break;
            }
            if let Some((_, project, id)) = q.pop_front() {
                if let Some(p) = self.projects.get(&*project) {
                    p.stacks.remove(&id);
                }
            }
        }
    }
}
