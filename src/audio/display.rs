//! Display data for the UI: waveform peaks and a dB spectrogram grid.

use realfft::RealFftPlanner;

/// The lowest value [`spectrogram_db`] returns (silence), in dB relative to a full-scale sine.
pub const DB_FLOOR: f32 = -100.0;

/// Sample range `[start, end)` of column `c` when `len` samples are split into `columns` parts.
fn column_range(c: usize, len: usize, columns: usize) -> (usize, usize) {
    let start = (c as u128 * len as u128 / columns as u128) as usize;
    let end = ((c + 1) as u128 * len as u128 / columns as u128) as usize;
    (start, end)
}

/// Min and max of the samples in each of `columns` equal time slices. Every sample falls in
/// exactly one column; a column with no sample (more columns than samples) is `(0.0, 0.0)`.
pub fn peaks(samples: &[f32], columns: usize) -> Vec<(f32, f32)> {
    (0..columns)
        .map(|c| {
            let (start, end) = column_range(c, samples.len(), columns);
            let slice = &samples[start..end];
            if slice.is_empty() {
                return (0.0, 0.0);
            }
            slice
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                })
        })
        .collect()
}

/// The smallest full scale of [`column_levels`]: a clip whose loudest sample is below this
/// (-40 dBFS, e.g. only a noise floor) is shown against this level, so it stays flat instead of
/// having its noise blown up to the full height.
pub const MIN_FULL_SCALE: f32 = 0.01;

/// Loudness of each of `width` display columns, in `[0, 1]`: the largest `|sample|` of the
/// `peaks` falling in the column, relative to the loudest of all `peaks` (at least
/// [`MIN_FULL_SCALE`]). Every peak falls in exactly one column; with more columns than peaks a
/// column shows the peak under it. Relative levels keep the shape of a quiet clip (beeps at
/// -10 dBFS over a -60 dBFS floor) visible at any length: silences are near 0, sounds near 1.
pub fn column_levels(peaks: &[(f32, f32)], width: usize) -> Vec<f32> {
    let amp = |&(lo, hi): &(f32, f32)| lo.abs().max(hi.abs());
    let full = peaks.iter().map(amp).fold(MIN_FULL_SCALE, f32::max);
    (0..width)
        .map(|c| {
            if peaks.is_empty() {
                return 0.0;
            }
            let (start, end) = column_range(c, peaks.len(), width);
            let end = end.max(start + 1).min(peaks.len());
            let start = start.min(end - 1);
            peaks[start..end].iter().map(amp).fold(0.0, f32::max) / full
        })
        .collect()
}

/// Magnitude spectrogram in dB for a `width` x `height` grid, row-major with `height` rows from
/// low to high frequency and `width` columns from start to end.
///
/// The frequency axis is linear: row `r` covers `[r, r + 1) * (rate / 2) / height` Hz and holds
/// the loudest FFT bin in that band. Column `c` is one Hann-windowed FFT frame centred on the
/// middle of the `c`-th time slice (zeros beyond the signal's ends). The FFT size is the larger
/// of 512 and the power of two that gives every row at least one bin. Values are
/// `20 * log10(|X| / (sum(window) / 2))`, so a full-scale sine reads about 0 dB, floored at
/// [`DB_FLOOR`].
pub fn spectrogram_db(samples: &[f32], rate: u32, width: usize, height: usize) -> Vec<f32> {
    let _ = rate; // the axis is relative to rate / 2: rows do not depend on its value
    let mut out = vec![DB_FLOOR; width * height];
    if width == 0 || height == 0 || samples.is_empty() {
        return out;
    }
    let n_fft = (2 * height).next_power_of_two().max(512);
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
    let window: Vec<f32> = (0..n_fft)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / n_fft as f32).cos())
        .collect();
    let norm = window.iter().sum::<f32>() / 2.0;
    let (mut frame, mut spectrum, mut scratch) = (
        fft.make_input_vec(),
        fft.make_output_vec(),
        fft.make_scratch_vec(),
    );
    let half_bins = n_fft / 2;
    let floor_amp = 10f32.powf(DB_FLOOR / 20.0);
    for c in 0..width {
        let (s, e) = column_range(c, samples.len(), width);
        let centre = (s + e) / 2;
        let start = centre as isize - (n_fft / 2) as isize;
        for (i, (f, &w)) in frame.iter_mut().zip(&window).enumerate() {
            let j = start + i as isize;
            *f = if j >= 0 && (j as usize) < samples.len() {
                samples[j as usize] * w
            } else {
                0.0
            };
        }
        fft.process_with_scratch(&mut frame, &mut spectrum, &mut scratch)
            .expect("FFT buffers are sized by the plan");
        for r in 0..height {
            let (b0, b1) = column_range(r, half_bins, height);
            let mag = spectrum[b0..b1.max(b0 + 1)]
                .iter()
                .map(|z| z.norm())
                .fold(0.0f32, f32::max)
                / norm;
            out[r * width + c] = 20.0 * mag.max(floor_amp).log10();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_peaks_cover_every_sample_once() {
        let ramp: Vec<f32> = (0..10).map(|i| i as f32).collect();
        assert_eq!(peaks(&ramp, 3), vec![(0.0, 2.0), (3.0, 5.0), (6.0, 9.0)]);
        assert_eq!(peaks(&ramp, 1), vec![(0.0, 9.0)]);
        let p = peaks(&ramp, 10);
        assert!(p
            .iter()
            .enumerate()
            .all(|(i, &(lo, hi))| lo == i as f32 && hi == i as f32));
        assert_eq!(
            peaks(&ramp[..2], 4),
            vec![(0.0, 0.0), (0.0, 0.0), (0.0, 0.0), (1.0, 1.0)]
        );
        assert!(peaks(&[], 5).iter().all(|&p| p == (0.0, 0.0)));
        // Signed values: a falling line from 1 to -1.
        let fall: Vec<f32> = (0..=100).map(|i| 1.0 - i as f32 / 50.0).collect();
        let p = peaks(&fall, 2);
        assert_eq!(p[0], (fall[49], 1.0));
        assert_eq!(p[1], (-1.0, fall[50]));
    }

    /// Counting clips of the synthetic test split, one per beep count, with that count.
    fn counting_clips() -> Vec<(crate::audio::Clip, usize)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/synth-test");
        let text = std::fs::read_to_string(dir.join("items.jsonl")).unwrap();
        let mut seen = std::collections::BTreeMap::new();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["meta"]["track"] != "count" {
                continue;
            }
            let n = v["meta"]["facts"]["sound"]["count"].as_u64().unwrap() as usize;
            let path = dir.join(v["audio"].as_str().unwrap());
            seen.entry(n).or_insert(path);
        }
        assert_eq!(seen.len(), 6, "counts 1 to 6 in the split");
        seen.into_iter()
            .map(|(n, p)| {
                (
                    crate::audio::decode_file(&p, &Default::default()).unwrap(),
                    n,
                )
            })
            .collect()
    }

    /// Beep intervals `[start, end)` of `x` as fractions of its length: runs of samples louder
    /// than 0.005 (the beeps peak at 0.16 or more, the noise floor stays under 0.003), merged
    /// across `bridge` samples (a tone's zero crossings).
    fn beeps(x: &[f32], bridge: usize) -> Vec<(f64, f64)> {
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for (i, v) in x.iter().enumerate() {
            if v.abs() <= 0.005 {
                continue;
            }
            match runs.last_mut() {
                Some(r) if i - r.1 <= bridge => r.1 = i + 1,
                _ => runs.push((i, i + 1)),
            }
        }
        let n = x.len() as f64;
        runs.iter()
            .map(|&(a, b)| (a as f64 / n, b as f64 / n))
            .collect()
    }

    #[test]
    fn counting_clips_show_each_beep_and_each_silence_at_any_length_and_width() {
        use crate::tui::state::PEAK_COLUMNS;
        for (clip, count) in counting_clips() {
            for seconds in [0.0, 60.0, 600.0] {
                // Longer clips: every sample repeated, so beeps and gaps keep their shares.
                let k = ((seconds * clip.sample_rate as f64) / clip.samples.len() as f64)
                    .ceil()
                    .max(1.0) as usize;
                let x: Vec<f32> = clip
                    .samples
                    .iter()
                    .flat_map(|&v| std::iter::repeat_n(v, k))
                    .collect();
                let truth = beeps(&x, k * clip.sample_rate as usize / 100);
                assert_eq!(truth.len(), count, "{:?}", clip.source);
                let p = peaks(&x, PEAK_COLUMNS);
                for width in [56, 80, 120, 200] {
                    let levels = column_levels(&p, width);
                    let what = format!("{:?} x{k} at {width} columns: {levels:?}", clip.source);
                    // A column's span, widened by one peak column on each side.
                    let m = 1.0 / PEAK_COLUMNS as f64;
                    let span = |c: usize| {
                        (
                            c as f64 / width as f64 - m,
                            (c + 1) as f64 / width as f64 + m,
                        )
                    };
                    for (c, &l) in levels.iter().enumerate() {
                        let (a, b) = span(c);
                        if truth.iter().all(|&(s, e)| b <= s || a >= e) {
                            assert!(l < 1.0 / 24.0, "silent column {c} at {l}: {what}");
                        }
                        if truth.iter().any(|&(s, e)| a >= s && b <= e) {
                            assert!(l > 0.5, "beep column {c} at {l}: {what}");
                        }
                    }
                    let loud: Vec<bool> = levels.iter().map(|&l| l > 0.5).collect();
                    let runs =
                        loud.windows(2).filter(|w| !w[0] && w[1]).count() + usize::from(loud[0]);
                    assert_eq!(runs, count, "{what}");
                }
            }
        }
    }

    #[test]
    fn levels_are_relative_to_the_loudest_peak_but_a_noise_floor_stays_flat() {
        let p = [(-0.1, 0.05), (0.0, 0.2), (-0.002, 0.001), (0.0, 0.0)];
        let near = |a: Vec<f32>, b: &[f32]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
        };
        assert!(near(column_levels(&p, 4), &[0.5, 1.0, 0.01, 0.0]));
        assert!(near(column_levels(&p, 2), &[1.0, 0.01]));
        // More columns than peaks: each column shows the peak under it.
        assert!(near(column_levels(&p[..2], 4), &[0.5, 0.5, 1.0, 1.0]));
        let floor = [(-0.003, 0.002); 8];
        assert!(column_levels(&floor, 8).iter().all(|&l| l <= 0.3));
        assert!(column_levels(&[], 3).iter().all(|&l| l == 0.0));
    }

    #[test]
    fn sine_energy_lands_in_its_row() {
        let rate = 16_000u32;
        let (width, height) = (20, 40); // each row spans 200 Hz
        let f = 3_100.0f32; // row 15
        let x: Vec<f32> = (0..rate)
            .map(|i| (2.0 * std::f32::consts::PI * f * i as f32 / rate as f32).sin())
            .collect();
        let grid = spectrogram_db(&x, rate, width, height);
        assert_eq!(grid.len(), width * height);
        for c in 0..width {
            let col: Vec<f32> = (0..height).map(|r| grid[r * width + c]).collect();
            let best = col
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0;
            assert_eq!(best, 15, "column {c}: {col:?}");
            // A full-scale sine reads near 0 dB; far rows are well below.
            assert!(col[15] > -3.0 && col[15] < 1.0, "peak {} dB", col[15]);
            assert!(col[2] < -60.0 && col[35] < -60.0);
        }
        assert!(spectrogram_db(&vec![0.0; 1000], rate, 4, 4)
            .iter()
            .all(|&v| v == DB_FLOOR));
    }
}
