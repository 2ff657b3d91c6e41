//! The dependency graph of a stack's resources: who requires whom, the
//! order to create them in (and, reversed, to delete them in), as levels
//! whose members may run at the same time, and the cycle when there is one.

use std::collections::BTreeSet;

/// Dependencies between the enabled resources of a stack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dependencies {
    names: Vec<String>,
    /// `requires[i]`: indices of the resources resource `i` requires.
    requires: Vec<BTreeSet<usize>>,
}

impl Dependencies {
    /// A graph over `names` (template order) with no edges.
    pub fn new(names: Vec<String>) -> Self {
        let n = names.len();
        Dependencies {
            names,
            requires: vec![BTreeSet::new(); n],
        }
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Records that `requirer` requires `required` (both must be nodes).
    pub fn add(&mut self, requirer: &str, required: &str) {
        if let (Some(a), Some(b)) = (self.index(requirer), self.index(required)) {
            self.requires[a].insert(b);
        }
    }

    /// The resources, in template order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// What `name` requires (is created after).
    pub fn requires(&self, name: &str) -> Vec<&str> {
        match self.index(name) {
            Some(i) => self.requires[i]
                .iter()
                .map(|j| self.names[*j].as_str())
                .collect(),
            None => Vec::new(),
        }
    }

    /// What requires `name` (Heat's `required_by`).
    pub fn required_by(&self, name: &str) -> Vec<&str> {
        match self.index(name) {
            Some(i) => self
                .requires
                .iter()
                .enumerate()
                .filter(|(_, r)| r.contains(&i))
                .map(|(j, _)| self.names[j].as_str())
                .collect(),
            None => Vec::new(),
        }
    }

    /// A cycle, named from its first resource back to it
    /// (`["a", "b", "a"]`), when the graph has one.
    pub fn find_cycle(&self) -> Option<Vec<String>> {
        // 0 = unvisited, 1 = on the stack, 2 = done
        let n = self.names.len();
        let mut state = vec![0u8; n];
        let mut stack: Vec<usize> = Vec::new();
        for start in 0..n {
            if state[start] != 0 {
                continue;
            }
            // Iterative DFS with explicit child iterators.
            let mut iters: Vec<(usize, Vec<usize>)> =
                vec![(start, self.requires[start].iter().copied().collect())];
            state[start] = 1;
            stack.push(start);
            while let Some((node, children)) = iters.last_mut() {
                let node = *node;
                if let Some(child) = children.pop() {
                    match state[child] {
                        0 => {
                            state[child] = 1;
                            stack.push(child);
                            iters.push((child, self.requires[child].iter().copied().collect()));
                        }
                        1 => {
                            let pos = stack.iter().position(|x| *x == child).unwrap_or(0);
                            let mut cycle: Vec<String> = stack[pos..]
                                .iter()
                                .map(|i| self.names[*i].clone())
                                .collect();
                            cycle.push(self.names[child].clone());
                            return Some(cycle);
                        }
                        _ => {}
                    }
                } else {
                    state[node] = 2;
                    stack.pop();
                    iters.pop();
                }
            }
        }
        None
    }

    /// Creation levels: every resource of a level depends only on earlier
    /// levels, so a level's members may be created concurrently. Members
    /// keep template order. `None` when there is a cycle.
    pub fn create_levels(&self) -> Option<Vec<Vec<&str>>> {
        let n = self.names.len();
        let mut done = vec![false; n];
        let mut levels = Vec::new();
        let mut remaining = n;
        while remaining > 0 {
            let level: Vec<usize> = (0..n)
                .filter(|i| !done[*i] && self.requires[*i].iter().all(|j| done[*j]))
                .collect();
            if level.is_empty() {
                return None;
            }
            for i in &level {
                done[*i] = true;
            }
            remaining -= level.len();
            levels.push(level.into_iter().map(|i| self.names[i].as_str()).collect());
        }
        Some(levels)
    }

    /// Deletion levels: the reverse, each resource deleted only after
    /// everything that requires it.
    pub fn delete_levels(&self) -> Option<Vec<Vec<&str>>> {
        let n = self.names.len();
        let mut done = vec![false; n];
        let mut levels = Vec::new();
        let mut remaining = n;
        while remaining > 0 {
            let level: Vec<usize> = (0..n)
                .filter(|i| !done[*i] && (0..n).all(|j| !self.requires[j].contains(i) || done[j]))
                .collect();
            if level.is_empty() {
                return None;
            }
            for i in &level {
                done[*i] = true;
            }
            remaining -= level.len();
            levels.push(level.into_iter().map(|i| self.names[i].as_str()).collect());
        }
        Some(levels)
    }

    /// One creation order (levels flattened).
    pub fn create_order(&self) -> Option<Vec<&str>> {
        self.create_levels()
            .map(|l| l.into_iter().flatten().collect())
    }

    /// One deletion order (levels flattened).
    pub fn delete_order(&self) -> Option<Vec<&str>> {
        self.delete_levels()
            .map(|l| l.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(names: &[&str], edges: &[(&str, &str)]) -> Dependencies {
        let mut d = Dependencies::new(names.iter().map(|s| s.to_string()).collect());
        for (a, b) in edges {
            d.add(a, b);
        }
        d
    }

    #[test]
    fn levels_and_orders() {
        // server needs port and volume; port needs net.
        let d = graph(
            &["server", "port", "net", "volume"],
            &[("server", "port"), ("server", "volume"), ("port", "net")],
        );
        assert_eq!(
            d.create_levels().unwrap(),
            vec![vec!["net", "volume"], vec!["port"], vec!["server"]]
        );
        assert_eq!(
            d.delete_levels().unwrap(),
            vec![vec!["server"], vec!["port", "volume"], vec!["net"]]
        );
        assert_eq!(
            d.create_order().unwrap(),
            ["net", "volume", "port", "server"]
        );
        assert_eq!(d.required_by("port"), ["server"]);
        assert!(d.find_cycle().is_none());
    }

    #[test]
    fn cycle_is_named() {
        let d = graph(&["a", "b", "c"], &[("a", "b"), ("b", "c"), ("c", "a")]);
        assert_eq!(d.find_cycle().unwrap(), ["a", "b", "c", "a"]);
        assert!(d.create_levels().is_none());
        let d = graph(&["a"], &[("a", "a")]);
        assert_eq!(d.find_cycle().unwrap(), ["a", "a"]);
    }
}
