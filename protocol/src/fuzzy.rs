//! Fuzzy matching, for the editor's file picker (paths) and for completion
//! (identifiers): the query's chars must appear in the text in order
//! (case-insensitively); among the ways they can, the best scoring one
//! counts. Runs of consecutive chars, matches at the start of a path segment
//! or a word, and matches in the file name score more; gaps and long texts
//! score less. Hand-written: it is one small dynamic program, and neither
//! user needs more. It lives in the pure crate because the server's
//! completion endpoint and the editor rank with the same one.

/// Points per matched char.
const MATCH: i64 = 16;
/// Extra for a char right after the previous match.
const CONSECUTIVE: i64 = 32;
/// Extra at the start of a path segment (the path's start or after `/`).
const SEGMENT_START: i64 = 30;
/// Extra at the start of a word (after `_`, `-`, `.`, a space; camelCase).
const WORD_START: i64 = 18;
/// Extra for a match within the file name (the last segment).
const IN_FILE_NAME: i64 = 6;
/// Lost per char skipped between two matches.
const GAP: i64 = 3;

/// A match: its score (higher is better) and the char positions matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// Higher is better.
    pub score: i64,
    /// The matched chars' positions in the path, ascending.
    pub positions: Vec<usize>,
}

/// Scores `path` against `query`; `None` when the query's chars are not
/// all in it, in order. An empty query matches everything, scored by
/// shortness.
pub fn score(query: &str, path: &str) -> Option<Match> {
    // Matching ignores case and the query's spaces.
    let query_chars = || {
        query
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
    };
    let lower_of = |c: char| c.to_lowercase().next().unwrap_or(c);
    // Most paths do not hold the query at all (the completion popup asks
    // for every word of a file on each key): a check that allocates
    // nothing spares them the rest.
    let mut rest = path.chars().map(lower_of);
    if !query_chars().all(|c| rest.any(|l| l == c)) {
        return None;
    }
    let q: Vec<char> = query_chars().collect();
    let p: Vec<char> = path.chars().collect();
    let lower: Vec<char> = p.iter().map(|&c| lower_of(c)).collect();
    let length_penalty = (p.len() / 4) as i64;
    if q.is_empty() {
        return Some(Match {
            score: -length_penalty,
            positions: Vec::new(),
        });
    }
    let name_start = p.iter().rposition(|&c| c == '/').map_or(0, |i| i + 1);
    let bonus = |j: usize| -> i64 {
        let prev = j.checked_sub(1).map(|i| p[i]);
        let mut b = match prev {
            None | Some('/') => SEGMENT_START,
            Some('_' | '-' | '.' | ' ') => WORD_START,
            Some(c) if c.is_lowercase() && p[j].is_uppercase() => WORD_START,
            _ => 0,
        };
        if j >= name_start {
            b += IN_FILE_NAME;
        }
        b
    };
    let (m, n) = (q.len(), p.len());
    const NONE: i64 = i64::MIN / 2;
    // best[i][j]: the best score with q[i] matched at p[j]; from[i][j]: where
    // q[i-1] was matched then.
    let mut best = vec![vec![NONE; n]; m];
    let mut from = vec![vec![usize::MAX; n]; m];
    for i in 0..m {
        // The best (score + position) of q[i-1] strictly before j-1, for a
        // gap: score - GAP * (j - j' - 1).
        let mut run: (i64, usize) = (NONE, usize::MAX);
        for j in 0..n {
            if i > 0 && j >= 2 {
                let k = j - 2;
                let v = best[i - 1][k];
                if v > NONE && v + GAP * k as i64 > run.0 {
                    run = (v + GAP * k as i64, k);
                }
            }
            if lower[j] != q[i] {
                continue;
            }
            let here = MATCH + bonus(j);
            if i == 0 {
                best[0][j] = here - GAP * j as i64 / 4;
                continue;
            }
            let mut top = NONE;
            if j >= 1 && best[i - 1][j - 1] > NONE {
                top = best[i - 1][j - 1] + CONSECUTIVE;
                from[i][j] = j - 1;
            }
            if run.0 > NONE {
                let gapped = run.0 - GAP * (j as i64 - 1);
                if gapped > top {
                    top = gapped;
                    from[i][j] = run.1;
                }
            }
            if top > NONE {
                best[i][j] = top + here;
            }
        }
    }
    let (end, &top) = best[m - 1]
        .iter()
        .enumerate()
        .filter(|(_, v)| **v > NONE)
        .max_by_key(|(j, v)| (**v, std::cmp::Reverse(*j)))?;
    let mut positions = vec![end];
    let mut j = end;
    for i in (1..m).rev() {
        j = from[i][j];
        positions.push(j);
    }
    positions.reverse();
    Some(Match {
        score: top - length_penalty,
        positions,
    })
}

/// The paths that match `query`, best first (ties: shorter, then in
/// order), as indices into `paths` with their matches.
pub fn rank<'a>(query: &str, paths: impl IntoIterator<Item = &'a str>) -> Vec<(usize, Match)> {
    let mut out: Vec<(usize, Match, usize)> = paths
        .into_iter()
        .enumerate()
        .filter_map(|(i, p)| score(query, p).map(|m| (i, m, p.len())))
        .collect();
    out.sort_by(|a, b| {
        b.1.score
            .cmp(&a.1.score)
            .then(a.2.cmp(&b.2))
            .then(a.0.cmp(&b.0))
    });
    out.into_iter().map(|(i, m, _)| (i, m)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn best<'a>(query: &str, paths: &[&'a str]) -> Vec<&'a str> {
        rank(query, paths.iter().copied())
            .into_iter()
            .map(|(i, _)| paths[i])
            .collect()
    }

    #[test]
    fn chars_must_appear_in_order() {
        assert!(score("mn", "src/main.rs").is_some());
        assert!(score("nm", "src/main.rs").is_none());
        assert!(score("MAIN", "src/main.rs").is_some());
        assert!(score("x", "").is_none());
        assert_eq!(score("smr", "src/main.rs").unwrap().positions, [0, 4, 9]);
    }

    #[test]
    fn runs_segment_starts_and_short_paths_win() {
        // A consecutive run beats scattered chars.
        assert_eq!(
            best("main", &["m/a/i/n.rs", "src/main.rs"]),
            ["src/main.rs", "m/a/i/n.rs"]
        );
        // Segment starts: "sr" as s(erver)/r(oom) loses to src.
        assert_eq!(
            best("src", &["server/rc.rs", "src/lib.rs"])[0],
            "src/lib.rs"
        );
        // The file name counts more than the folders.
        assert_eq!(
            best("lib", &["lib/other/x.rs", "src/lib.rs"])[0],
            "src/lib.rs"
        );
        // Equal matches: the shorter path first.
        assert_eq!(
            best("ab", &["a/deep/folder/ab.rs", "ab.rs"]),
            ["ab.rs", "a/deep/folder/ab.rs"]
        );
        // Word starts in camelCase and after separators.
        assert!(
            score("fb", "src/fooBar.rs").unwrap().score
                > score("fb", "src/xfxbx.rs").unwrap().score
        );
    }

    #[test]
    fn an_empty_query_lists_everything_shortest_first() {
        assert_eq!(
            best("", &["long/path.rs", "a.rs"]),
            ["a.rs", "long/path.rs"]
        );
        // Spaces are ignored.
        assert_eq!(best("s m", &["src/main.rs"]), ["src/main.rs"]);
    }
}
