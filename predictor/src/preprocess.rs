//! Letterboxing: an RGB image into the model's NCHW float input, aspect kept, centred,
//! padded with grey 114, bilinear, scaled to 0..1. The geometry is Ultralytics' `LetterBox`;
//! the resize is Pillow's antialiased bilinear (8-bit fixed point, as Pillow computes it),
//! the pipeline behind the model's reference detections (`tests/fixtures/reference.json`).

use std::cell::RefCell;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
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

    /// The smallest input a model with dynamic height and width takes for an image of
    /// `width`x`height` ("rect" mode, Ultralytics' `LetterBox(auto=True)`): the long side
    /// scaled to `long`, each side then padded up to a multiple of `stride`. A 1280x720
    /// photo becomes 640x384 instead of 640x640. Returns the geometry and the input size.
    pub fn rect(width: u32, height: u32, long: u32, stride: u32) -> (Self, u32, u32) {
        let scale = (long as f32 / width as f32).min(long as f32 / height as f32);
        let new_w = ((width as f32 * scale).round() as u32).clamp(1, long);
        let new_h = ((height as f32 * scale).round() as u32).clamp(1, long);
        let (dst_w, dst_h) = (
            new_w + (long - new_w) % stride,
            new_h + (long - new_h) % stride,
        );
        let lb = Letterbox {
            scale,
            pad_x: ((dst_w - new_w) as f32 / 2.0 - 0.1).round().max(0.0),
            pad_y: ((dst_h - new_h) as f32 / 2.0 - 0.1).round().max(0.0),
            width,
            height,
        };
        (lb, dst_w, dst_h)
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

thread_local! {
    /// Per thread: the SIMD resizer (it keeps its scratch buffers between calls) and the
    /// resized RGB rows, both reused across images.
    static RESIZER: RefCell<(Resizer, Vec<u8>)> = RefCell::new((Resizer::new(), Vec::new()));
}

/// Writes the letterboxed image into `out` (resized to 3 * `dst_w` * `dst_h`, planes R, G, B)
/// and returns the geometry needed to map detections back.
///
/// The resize is `fast_image_resize`'s convolution with the bilinear (triangle) filter
/// widened by the downscale factor, in 8-bit fixed point: Pillow's `resize(BILINEAR)`,
/// antialiased, on AVX2 where the CPU has it. The resized pixels are then spread into the
/// three float planes in one pass that also writes the grey bands, so every element of
/// `out` is written exactly once.
pub fn letterbox_into(image: &RgbImage, dst_w: u32, dst_h: u32, out: &mut Vec<f32>) -> Letterbox {
    let lb = Letterbox::fit(image.width(), image.height(), dst_w, dst_h);
    place_into(image, &lb, dst_w, dst_h, out);
    lb
}

/// The model's input for `image`: letterboxed into the `width`x`height` square, or, for a
/// model in rect mode, into the smallest rectangle of its long side and stride 32.
/// Returns the geometry and the input's width and height.
pub fn prepare(
    image: &RgbImage,
    width: u32,
    height: u32,
    rect: bool,
    out: &mut Vec<f32>,
) -> (Letterbox, u32, u32) {
    if rect {
        let (lb, w, h) = Letterbox::rect(image.width(), image.height(), width.max(height), 32);
        place_into(image, &lb, w, h, out);
        (lb, w, h)
    } else {
        (letterbox_into(image, width, height, out), width, height)
    }
}

/// Writes `image` into `out` with the geometry `lb` on a `dst_w`x`dst_h` input.
pub fn place_into(image: &RgbImage, lb: &Letterbox, dst_w: u32, dst_h: u32, out: &mut Vec<f32>) {
    let (new_w, new_h) = lb.resized();
    RESIZER.with_borrow_mut(|(resizer, resized)| {
        resized.resize((new_w * new_h * 3) as usize, 0);
        let src = ImageRef::new(
            image.width(),
            image.height(),
            image.as_raw(),
            PixelType::U8x3,
        )
        .expect("an RgbImage's buffer holds width * height * 3 bytes");
        let mut dst =
            Image::from_slice_u8(new_w, new_h, resized, PixelType::U8x3).expect("sized just above");
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        resizer
            .resize(&src, &mut dst, &options)
            .expect("source and destination are both U8x3 and non-empty");
        spread(
            resized,
            new_w as usize,
            lb,
            dst_w as usize,
            dst_h as usize,
            out,
        );
    });
}

/// Interleaved RGB rows (`width` wide) into the NCHW float planes at the letterbox offset,
/// scaled to 0..1, grey around them.
fn spread(
    rgb: &[u8],
    width: usize,
    lb: &Letterbox,
    dst_w: usize,
    dst_h: usize,
    out: &mut Vec<f32>,
) {
    let pad = f32::from(PAD_VALUE) / 255.0;
    let plane = dst_w * dst_h;
    // Every element is written below: only a new length needs filling.
    out.resize(3 * plane, pad);
    let (ox, oy) = (lb.pad_x as usize, lb.pad_y as usize);
    let height = rgb.len() / (width * 3);
    let (r_plane, rest) = out.split_at_mut(plane);
    let (g_plane, b_plane) = rest.split_at_mut(plane);
    for y in 0..dst_h {
        let at = y * dst_w;
        let (r, g, b) = (
            &mut r_plane[at..at + dst_w],
            &mut g_plane[at..at + dst_w],
            &mut b_plane[at..at + dst_w],
        );
        if !(oy..oy + height).contains(&y) {
            for p in [r, g, b] {
                p.fill(pad);
            }
            continue;
        }
        for p in [&mut *r, &mut *g, &mut *b] {
            p[..ox].fill(pad);
            p[ox + width..].fill(pad);
        }
        let row = &rgb[(y - oy) * width * 3..][..width * 3];
        let pixels = row.chunks_exact(3);
        let dst = r[ox..ox + width]
            .iter_mut()
            .zip(&mut g[ox..ox + width])
            .zip(&mut b[ox..ox + width]);
        for (((r, g), b), px) in dst.zip(pixels) {
            *r = f32::from(px[0]) * (1.0 / 255.0);
            *g = f32::from(px[1]) * (1.0 / 255.0);
            *b = f32::from(px[2]) * (1.0 / 255.0);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rect_mode_pads_the_short_side_to_the_stride_only() {
        let (lb, w, h) = Letterbox::rect(1280, 720, 640, 32);
        assert_eq!((w, h), (640, 384));
        assert_eq!((lb.scale, lb.pad_x, lb.pad_y), (0.5, 0.0, 12.0));
        let (_, w, h) = Letterbox::rect(810, 1080, 640, 32);
        assert_eq!((w, h), (480, 640));
        // Square stays square; a thin strip keeps one stride.
        assert_eq!(Letterbox::rect(512, 512, 640, 32).1, 640);
        let (_, w, h) = Letterbox::rect(2000, 10, 640, 32);
        assert_eq!((w, h), (640, 32));
    }

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
        // Output is 8-bit, as Pillow's: within half a level of the exact 127.5.
        let mut img = RgbImage::new(8, 1);
        for x in (1..8).step_by(2) {
            img.put_pixel(x, 0, image::Rgb([255, 255, 255]));
        }
        let mut out = Vec::new();
        letterbox_into(&img, 4, 1, &mut out);
        let row: Vec<f32> = out[0..4].iter().map(|v| v * 255.0).collect();
        for got in &row[1..3] {
            assert!((got - 127.5).abs() <= 0.5 + 1e-3, "{row:?}");
        }
        assert!(row[3] > 128.5 && row[0] < 126.5, "{row:?}");
    }

    #[test]
    fn interpolates_between_neighbours() {
        // Two pixels 0 and 255 stretched to 4: half-pixel bilinear gives
        // 0, 63.75, 191.25, 255, stored in 8 bits (within half a level).
        let img = RgbImage::from_raw(2, 1, vec![0, 0, 0, 255, 255, 255]).unwrap();
        let mut out = Vec::new();
        letterbox_into(&img, 4, 2, &mut out);
        let row: Vec<f32> = out[0..4].iter().map(|v| v * 255.0).collect();
        for (got, want) in row.iter().zip([0.0, 63.75, 191.25, 255.0]) {
            assert!((got - want).abs() <= 0.5 + 1e-3, "{row:?}");
        }
    }

    #[test]
    fn matches_pillow_on_a_gradient() {
        // Pillow 13's `Image.resize((3, 2), Image.BILINEAR)` of this 7x5 image gives red
        // 34, 120, 206 along the top row and green 60, 180 down the left column: the
        // letterboxed planes must hold the same bytes.
        let img = RgbImage::from_fn(7, 5, |x, y| {
            image::Rgb([(x * 40) as u8, (y * 60) as u8, 200])
        });
        let mut out = Vec::new();
        let lb = letterbox_into(&img, 3, 3, &mut out);
        assert_eq!((lb.resized(), lb.pad_y), ((3, 2), 0.0));
        let at = |c: usize, x: usize, y: usize| (out[c * 9 + y * 3 + x] * 255.0).round() as u8;
        let red: Vec<u8> = (0..3).map(|x| at(0, x, 0)).collect();
        let green: Vec<u8> = (0..2).map(|y| at(1, 0, y)).collect();
        assert_eq!(red, [34, 120, 206]);
        assert_eq!(green, [60, 180]);
        assert_eq!(at(2, 1, 1), 200);
        assert_eq!(at(0, 1, 2), PAD_VALUE, "the band below");
    }

    #[test]
    fn maps_points_back_and_clamps() {
        let lb = Letterbox::fit(1280, 720, 640, 640);
        assert_eq!(lb.to_original(320.0, 320.0), (640.0, 360.0));
        assert_eq!(lb.to_original(-5.0, 700.0), (0.0, 720.0));
    }
}
