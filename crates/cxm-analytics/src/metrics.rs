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
