//! Letterboxing: an RGB image into the model's NCHW float input, aspect kept, centred,
//! padded with grey 114, bilinear, scaled to 0..1. The geometry is Ultralytics' `LetterBox`;
//! the resize is Pillow's antialiased bilinear, the pipeline behind the model's reference
//! detections (`tests/fixtures/reference.json`).

use image::RgbImage;

/// Grey used for the padding, as Ultralytics trains with.
pub const PAD_VALUE: u8 = 114;

/// How original pixels map into the model's input: `input = original * scale + pad`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Letterbox {
    pub scale: f32,
    pub pad_x: f32,
    pub pad_y: f32,
    pub width: u32,
    pub height: u32,
}

impl Letterbox {
    /// The geometry Ultralytics uses for an image of `width`x`height` into `dst_w`x`dst_h`.
    pub fn fit(width: u32, height: u32, dst_w: u32, dst_h: u32) -> Self {
        let scale = (dst_w as f32 / width as f32).min(dst_h as f32 / height as f32);
        let new_w = ((width as f32 * scale).round() as u32).clamp(1, dst_w);
        let new_h = ((height as f32 * scale).round() as u32).clamp(1, dst_h);
        let half_w = (dst_w - new_w) as f32 / 2.0;
        let half_h = (dst_h - new_h) as f32 / 2.0;
        Letterbox {
            scale,
            pad_x: (half_w - 0.1).round().max(0.0),
            pad_y: (half_h - 0.1).round().max(0.0),
            width,
            height,
        }
    }

    fn resized(&self) -> (u32, u32) {
        let w = (self.width as f32 * self.scale).round() as u32;
        let h = (self.height as f32 * self.scale).round() as u32;
        (w.max(1), h.max(1))
    }

    /// Maps a point in model-input pixels back to original pixels, clamped to the image.
    pub fn to_original(&self, x: f32, y: f32) -> (f32, f32) {
        let ox = ((x - self.pad_x) / self.scale).clamp(0.0, self.width as f32);
        let oy = ((y - self.pad_y) / self.scale).clamp(0.0, self.height as f32);
        (ox, oy)
    }
}

/// A separable resampling filter along one axis: for each destination coordinate, the
/// first source index and the normalised weights of the source samples from there on.
struct Taps {
    start: Vec<usize>,
    count: Vec<usize>,
    stride: usize,
    weights: Vec<f32>,
}

impl Taps {
    fn of(&self, d: usize) -> (usize, &[f32]) {
        (
            self.start[d],
            &self.weights[d * self.stride..][..self.count[d]],
        )
    }
}

/// Triangle (bilinear) taps whose support widens with the downscale factor, as Pillow's
/// `Image.resize(BILINEAR)` computes them: downscaling averages every covered source
/// pixel instead of sampling two and aliasing. Upscaling is plain half-pixel bilinear.
fn taps(src: u32, dst: u32) -> Taps {
    let (src, dst) = (src as usize, dst as usize);
    let scale = src as f32 / dst as f32;
    let filter_scale = scale.max(1.0);
    let support = filter_scale;
    let stride = (support.ceil() as usize) * 2 + 1;
    let mut t = Taps {
        start: Vec::with_capacity(dst),
        count: Vec::with_capacity(dst),
        stride,
        weights: vec![0.0; dst * stride],
    };
    for d in 0..dst {
        let centre = (d as f32 + 0.5) * scale;
        let lo = ((centre - support + 0.5).floor().max(0.0) as usize).min(src - 1);
        let hi = ((centre + support + 0.5).floor() as usize)
            .clamp(lo + 1, src)
            .min(lo + stride);
        let w = &mut t.weights[d * stride..][..hi - lo];
        for (k, s) in (lo..hi).enumerate() {
            let x = ((s as f32 - centre + 0.5) / filter_scale).abs();
            w[k] = (1.0 - x).max(0.0);
        }
        let sum: f32 = w.iter().sum();
        if sum > 0.0 {
            w.iter_mut().for_each(|v| *v /= sum);
        } else {
            w[0] = 1.0;
        }
        // Trailing zero weights are dropped so the inner loops do no empty work.
        let count = w.iter().rposition(|&v| v != 0.0).map_or(1, |i| i + 1);
        t.start.push(lo);
        t.count.push(count);
    }
    t
}

/// Writes the letterboxed image into `out` (resized to 3 * `dst_w` * `dst_h`, planes R, G, B)
/// and returns the geometry needed to map detections back.
///
/// The vertical pass runs first, straight from the `u8` rows (contiguous, so it
/// vectorises), which leaves the gather-heavy horizontal pass only the output rows.
pub fn letterbox_into(image: &RgbImage, dst_w: u32, dst_h: u32, out: &mut Vec<f32>) -> Letterbox {
    let lb = Letterbox::fit(image.width(), image.height(), dst_w, dst_h);
    let (new_w, new_h) = lb.resized();
    let (src_w, src_h) = (image.width() as usize, image.height() as usize);
    let (new_w, new_h) = (new_w as usize, new_h as usize);
    let plane = (dst_w * dst_h) as usize;
    out.clear();
    out.resize(3 * plane, f32::from(PAD_VALUE) / 255.0);

    let xs = taps(src_w as u32, new_w as u32);
    let ys = taps(src_h as u32, new_h as u32);
    let src = image.as_raw();
    let row_len = src_w * 3;
    let (r_plane, rest) = out.split_at_mut(plane);
    let (g_plane, b_plane) = rest.split_at_mut(plane);
    let (ox, oy) = (lb.pad_x as usize, lb.pad_y as usize);
    let mut column = vec![0.0f32; row_len];

    for y in 0..new_h {
        // Vertical: one row of interleaved RGB at the source width.
        let (start, weights) = ys.of(y);
        column.fill(0.0);
        for (src_row, &w) in src[start * row_len..].chunks_exact(row_len).zip(weights) {
            column
                .iter_mut()
                .zip(src_row)
                .for_each(|(c, &v)| *c += f32::from(v) * w);
        }
        // Horizontal: into the three planes at the letterbox offset, scaled to 0..1.
        let base = (oy + y) * dst_w as usize + ox;
        let r = &mut r_plane[base..base + new_w];
        let g = &mut g_plane[base..base + new_w];
        let b = &mut b_plane[base..base + new_w];
        for x in 0..new_w {
            let (start, weights) = xs.of(x);
            let mut acc = [0.0f32; 3];
            for (rgb, &w) in column[start * 3..].chunks_exact(3).zip(weights) {
                acc[0] += rgb[0] * w;
                acc[1] += rgb[1] * w;
                acc[2] += rgb[2] * w;
            }
            r[x] = acc[0] * (1.0 / 255.0);
            g[x] = acc[1] * (1.0 / 255.0);
            b[x] = acc[2] * (1.0 / 255.0);
        }
    }
    lb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_image_is_centred_vertically_with_grey_bands() {
        let img = RgbImage::from_pixel(1280, 720, image::Rgb([255, 0, 0]));
        let mut out = Vec::new();
        let lb = letterbox_into(&img, 640, 640, &mut out);
        assert_eq!(lb.scale, 0.5);
        assert_eq!((lb.pad_x, lb.pad_y), (0.0, 140.0));
        assert_eq!(out.len(), 3 * 640 * 640);
        let grey = 114.0 / 255.0;
        let at = |c: usize, x: usize, y: usize| out[c * 640 * 640 + y * 640 + x];
        assert_eq!(at(0, 10, 139), grey);
        assert_eq!(at(0, 10, 140), 1.0);
        assert_eq!(at(1, 10, 140), 0.0);
        assert_eq!(at(0, 639, 499), 1.0);
        assert_eq!(at(0, 639, 500), grey);
    }

    #[test]
    fn tall_and_tiny_images_keep_aspect_and_stay_in_bounds() {
        let mut out = Vec::new();
        let lb = letterbox_into(&RgbImage::new(810, 1080), 640, 640, &mut out);
        assert_eq!(lb.pad_y, 0.0);
        assert_eq!(lb.pad_x, 80.0);

        let one = RgbImage::from_pixel(1, 1, image::Rgb([0, 255, 0]));
        let lb = letterbox_into(&one, 640, 640, &mut out);
        assert_eq!(lb.scale, 640.0);
        assert!(out[640 * 640..2 * 640 * 640].iter().all(|&v| v == 1.0));

        let strip = RgbImage::new(5000, 3);
        let lb = letterbox_into(&strip, 640, 640, &mut out);
        assert_eq!(lb.resized(), (640, 1));
    }

    #[test]
    fn downscaling_averages_every_covered_pixel() {
        // Alternating black and white columns halved: a two-tap bilinear would alias to
        // all black or all white; the widened triangle gives the same grey everywhere
        // but at the edges, where Pillow renormalises over the taps inside the image.
        let mut img = RgbImage::new(8, 1);
        for x in (1..8).step_by(2) {
            img.put_pixel(x, 0, image::Rgb([255, 255, 255]));
        }
        let mut out = Vec::new();
        letterbox_into(&img, 4, 1, &mut out);
        let row: Vec<f32> = out[0..4].iter().map(|v| v * 255.0).collect();
        for got in &row[1..3] {
            assert!((got - 127.5).abs() < 1e-3, "{row:?}");
        }
        assert!(row[3] > 127.5 && row[0] < 127.5, "{row:?}");
    }

    #[test]
    fn interpolates_between_neighbours() {
        // Two pixels 0 and 255 stretched to 4: half-pixel bilinear gives
        // 0, 63.75, 191.25, 255.
        let img = RgbImage::from_raw(2, 1, vec![0, 0, 0, 255, 255, 255]).unwrap();
        let mut out = Vec::new();
        letterbox_into(&img, 4, 2, &mut out);
        let row: Vec<f32> = out[0..4].iter().map(|v| v * 255.0).collect();
        for (got, want) in row.iter().zip([0.0, 63.75, 191.25, 255.0]) {
            assert!((got - want).abs() < 1e-3, "{row:?}");
        }
    }

    #[test]
    fn maps_points_back_and_clamps() {
        let lb = Letterbox::fit(1280, 720, 640, 640);
        assert_eq!(lb.to_original(320.0, 320.0), (640.0, 360.0));
        assert_eq!(lb.to_original(-5.0, 700.0), (0.0, 720.0));
    }
}
