//! Evaluation statistics computed the way scikit-learn and scipy compute them, so figures
//! compare with published ones.

/// Pearson correlation; `None` for fewer than two points or zero variance.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len().min(y.len());
    if n < 2 {
        return None;
    }
    let mx = x[..n].iter().sum::<f64>() / n as f64;
    let my = y[..n].iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (dx, dy) = (x[i] - mx, y[i] - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx.sqrt() * syy.sqrt()))
}

/// Precision, recall and F1 averaged over classes weighted by support, as
/// `sklearn.metrics.precision_recall_fscore_support(average="weighted")` with
/// `zero_division=0`.
pub fn weighted_prf(truth: &[i8], predicted: &[i8]) -> (f64, f64, f64) {
    let mut classes: Vec<i8> = truth.iter().chain(predicted).copied().collect();
    classes.sort_unstable();
    classes.dedup();
    let total = truth.len() as f64;
    let (mut p, mut r, mut f) = (0.0, 0.0, 0.0);
    for c in classes {
        let tp = truth
            .iter()
            .zip(predicted)
            .filter(|(t, q)| **t == c && **q == c)
            .count() as f64;
        let support = truth.iter().filter(|t| **t == c).count() as f64;
        let pred = predicted.iter().filter(|q| **q == c).count() as f64;
        let prec = if pred > 0.0 { tp / pred } else { 0.0 };
        let rec = if support > 0.0 { tp / support } else { 0.0 };
        let f1 = if prec + rec > 0.0 {
            2.0 * prec * rec / (prec + rec)
        } else {
            0.0
        };
        let w = support / total;
        p += w * prec;
        r += w * rec;
        f += w * f1;
    }
    (p, r, f)
}

/// VADER's three-way class of a compound score.
pub fn vader_class(compound: f64) -> i8 {
    if compound > 0.05 {
        1
    } else if compound < -0.05 {
        -1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_known_values() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]).unwrap() - 1.0).abs() < 1e-12);
        // numpy.corrcoef([1,2,3,4,5],[2,1,4,3,5])[0,1] = 0.8
        assert!(
            (pearson(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 1.0, 4.0, 3.0, 5.0]).unwrap() - 0.8).abs()
                < 1e-12
        );
        assert_eq!(pearson(&[1.0, 1.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn weighted_prf_matches_sklearn() {
        // sklearn: precision_recall_fscore_support([1,1,0,-1,-1,-1],[1,0,0,-1,1,-1],average="weighted")
        // per class (-1, 0, 1): P (1, .5, .5), R (2/3, 1, .5), support (3, 1, 2)
        // -> (0.75, 0.6666666666666666, 0.6777777777777777)
        let (p, r, f) = weighted_prf(&[1, 1, 0, -1, -1, -1], &[1, 0, 0, -1, 1, -1]);
        assert!((p - 0.75).abs() < 1e-12, "{p}");
        assert!((r - 0.666_666_666_666_666_6).abs() < 1e-12, "{r}");
        assert!((f - 0.677_777_777_777_777_7).abs() < 1e-12, "{f}");
    }
}

/// Contingency counts of two labelings.
fn contingency(a: &[usize], b: &[usize]) -> (Vec<Vec<f64>>, Vec<f64>, Vec<f64>) {
    let ka = a.iter().max().map_or(0, |m| m + 1);
    let kb = b.iter().max().map_or(0, |m| m + 1);
    let mut m = vec![vec![0.0; kb]; ka];
    for (x, y) in a.iter().zip(b) {
        m[*x][*y] += 1.0;
    }
    let ra = m.iter().map(|r| r.iter().sum()).collect();
    let rb = (0..kb).map(|j| m.iter().map(|r| r[j]).sum()).collect();
    (m, ra, rb)
}

fn entropy(counts: &[f64], n: f64) -> f64 {
    counts
        .iter()
        .filter(|c| **c > 0.0)
        .map(|c| -(c / n) * (c / n).ln())
        .sum()
}

/// Normalised mutual information with the arithmetic-mean normaliser
/// (`sklearn.metrics.normalized_mutual_info_score` default).
pub fn nmi(truth: &[usize], predicted: &[usize]) -> f64 {
    let n = truth.len() as f64;
    if n == 0.0 {
        return 0.0;
    }
    let (m, ra, rb) = contingency(truth, predicted);
    let mut mi = 0.0;
    for (i, row) in m.iter().enumerate() {
        for (j, c) in row.iter().enumerate() {
            if *c > 0.0 {
                mi += (c / n) * ((c * n) / (ra[i] * rb[j])).ln();
            }
        }
    }
    let (ha, hb) = (entropy(&ra, n), entropy(&rb, n));
    if ha == 0.0 && hb == 0.0 {
        return 1.0;
    }
    let denom = (ha + hb) / 2.0;
    if denom <= 0.0 {
        0.0
    } else {
        (mi / denom).clamp(0.0, 1.0)
    }
}

/// Adjusted Rand index (`sklearn.metrics.adjusted_rand_score`).
pub fn ari(truth: &[usize], predicted: &[usize]) -> f64 {
    let n = truth.len() as f64;
    let c2 = |x: f64| x * (x - 1.0) / 2.0;
    let (m, ra, rb) = contingency(truth, predicted);
    let index: f64 = m.iter().flatten().map(|c| c2(*c)).sum();
    let sa: f64 = ra.iter().map(|c| c2(*c)).sum();
    let sb: f64 = rb.iter().map(|c| c2(*c)).sum();
    let expected = sa * sb / c2(n);
    let max = (sa + sb) / 2.0;
    if (max - expected).abs() < f64::EPSILON {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

/// Minimum-cost assignment on a square cost matrix (Hungarian method with potentials,
/// O(n³)); returns the column assigned to each row.
pub fn hungarian(cost: &[Vec<f64>]) -> Vec<usize> {
    let n = cost.len();
    let inf = f64::INFINITY;
    let (mut u, mut v) = (vec![0.0; n + 1], vec![0.0; n + 1]);
    let (mut p, mut way) = (vec![0usize; n + 1], vec![0usize; n + 1]);
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![inf; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = inf;
            let mut j1 = 0;
            for j in 1..=n {
                if !used[j] {
                    let cur = cost[i0 - 1][j - 1] - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut assignment = vec![0; n];
    for j in 1..=n {
        if p[j] > 0 {
            assignment[p[j] - 1] = j - 1;
        }
    }
    assignment
}

/// Clustering accuracy: the share of texts whose cluster maps to their label under the best
/// one-to-one mapping (Hungarian matching, as scipy's `linear_sum_assignment`).
pub fn cluster_accuracy(truth: &[usize], predicted: &[usize]) -> f64 {
    if truth.is_empty() {
        return 0.0;
    }
    let k = truth.iter().chain(predicted).max().map_or(0, |m| m + 1);
    let mut w = vec![vec![0.0; k]; k];
    for (t, p) in truth.iter().zip(predicted) {
        w[*p][*t] += 1.0;
    }
    let cost: Vec<Vec<f64>> = w.iter().map(|r| r.iter().map(|c| -c).collect()).collect();
    let a = hungarian(&cost);
    let matched: f64 = a.iter().enumerate().map(|(i, j)| w[i][*j]).sum();
    matched / truth.len() as f64
}

#[cfg(test)]
mod clustering_tests {
    use super::*;

    #[test]
    fn sklearn_reference_values() {
        let t = [0, 0, 0, 1, 1, 1];
        let p = [0, 0, 1, 1, 2, 2];
        // sklearn 1.9: normalized_mutual_info_score -> 0.5158037429793889; adjusted_rand_score -> 0.24242424242424243
        assert!(
            (nmi(&t, &p) - 0.515_803_742_979_388_9).abs() < 1e-12,
            "{}",
            nmi(&t, &p)
        );
        assert!(
            (ari(&t, &p) - 0.242_424_242_424_242_46).abs() < 1e-12,
            "{}",
            ari(&t, &p)
        );
        assert!((nmi(&t, &[1, 1, 1, 0, 0, 0]) - 1.0).abs() < 1e-12);
        // best mapping 0->0 (2 right), 2->1 (2 right): 4 of 6
        assert!((cluster_accuracy(&t, &p) - 4.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn hungarian_finds_the_minimum() {
        let cost = vec![
            vec![4.0, 1.0, 3.0],
            vec![2.0, 0.0, 5.0],
            vec![3.0, 2.0, 2.0],
        ];
        let a = hungarian(&cost);
        let total: f64 = a.iter().enumerate().map(|(i, j)| cost[i][*j]).sum();
        assert_eq!(total, 5.0);
    }
}
