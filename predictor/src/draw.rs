//! Annotation: boxes and score labels drawn on the original image, then JPEG encoding.
//!
//! Labels use the public-domain 8x8 bitmap font from the `font8x8` crate, scaled with
//! the image, so the crate needs no font file and no glyph rasteriser.

use font8x8::UnicodeFonts;
use std::cell::RefCell;

use image::{Rgb, RgbImage};
use turbojpeg::{Compressor, PixelFormat, Subsamp};

/// A box to draw: corners in pixels, its class and the text of its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    pub class_id: usize,
    pub bbox: [f32; 4],
    pub label: String,
}

/// Ultralytics' 20-colour palette: a class always gets the same colour.
const PALETTE: [[u8; 3]; 20] = [
    [0xFF, 0x38, 0x38],
    [0xFF, 0x9D, 0x97],
    [0xFF, 0x70, 0x1F],
    [0xFF, 0xB2, 0x1D],
    [0xCF, 0xD2, 0x31],
    [0x48, 0xF9, 0x0A],
    [0x92, 0xCC, 0x17],
    [0x3D, 0xDB, 0x86],
    [0x1A, 0x93, 0x34],
    [0x00, 0xD4, 0xBB],
    [0x2C, 0x99, 0xA8],
    [0x00, 0xC2, 0xFF],
    [0x34, 0x45, 0x93],
    [0x64, 0x73, 0xFF],
    [0x00, 0x18, 0xEC],
    [0x84, 0x38, 0xFF],
    [0x52, 0x00, 0x85],
    [0xCB, 0x38, 0xFF],
    [0xFF, 0x95, 0xC8],
    [0xFF, 0x37, 0xC7],
];

pub fn class_color(class_id: usize) -> Rgb<u8> {
    Rgb(PALETTE[class_id % PALETTE.len()])
}

/// Draws every annotation onto `image` in place. Line width and glyph size follow the
/// image's size so labels stay readable on large photographs and fit on small ones.
pub fn draw(image: &mut RgbImage, annotations: &[Annotation]) {
    let (w, h) = image.dimensions();
    let thickness = (((w + h) as f32 / 2.0 * 0.003).round() as u32).max(1);
    let glyph_scale = thickness.max(1);
    for a in annotations {
        let color = class_color(a.class_id);
        let [x1, y1, x2, y2] = a.bbox.map(|v| v.round().max(0.0) as u32);
        let (x2, y2) = (x2.min(w.saturating_sub(1)), y2.min(h.saturating_sub(1)));
        for t in 0..thickness {
            outline(
                image,
                x1 + t,
                y1 + t,
                x2.saturating_sub(t),
                y2.saturating_sub(t),
                color,
            );
        }
        label(image, x1, y1, &a.label, color, glyph_scale);
    }
}

fn fill(image: &mut RgbImage, x1: u32, y1: u32, x2: u32, y2: u32, color: Rgb<u8>) {
    let (w, h) = image.dimensions();
    for y in y1..y2.min(h) {
        for x in x1..x2.min(w) {
            image.put_pixel(x, y, color);
        }
    }
}

fn outline(image: &mut RgbImage, x1: u32, y1: u32, x2: u32, y2: u32, color: Rgb<u8>) {
    if x1 > x2 || y1 > y2 {
        return;
    }
    fill(image, x1, y1, x2 + 1, y1 + 1, color);
    fill(image, x1, y2, x2 + 1, y2 + 1, color);
    fill(image, x1, y1, x1 + 1, y2 + 1, color);
    fill(image, x2, y1, x2 + 1, y2 + 1, color);
}

/// A filled plate with the text, above the box when there is room, else inside it.
fn label(image: &mut RgbImage, x: u32, y: u32, text: &str, color: Rgb<u8>, scale: u32) {
    let glyph = 8 * scale;
    let pad = scale;
    let plate_w = text.chars().count() as u32 * glyph + 2 * pad;
    let plate_h = glyph + 2 * pad;
    let top = if y >= plate_h { y - plate_h } else { y };
    let left = x.min(image.width().saturating_sub(plate_w));
    fill(image, left, top, left + plate_w, top + plate_h, color);
    let [r, g, b] = color.0.map(u32::from);
    let ink = if r * 299 + g * 587 + b * 114 > 150_000 {
        Rgb([0, 0, 0])
    } else {
        Rgb([255, 255, 255])
    };
    for (i, ch) in text.chars().enumerate() {
        let bitmap = font8x8::BASIC_FONTS.get(ch).unwrap_or([0; 8]);
        let gx = left + pad + i as u32 * glyph;
        for (row, bits) in bitmap.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    let px = gx + col * scale;
                    let py = top + pad + row as u32 * scale;
                    fill(image, px, py, px + scale, py + scale, ink);
                }
            }
        }
    }
}

thread_local! {
    /// A TurboJPEG compressor per thread, reused: each holds libjpeg's state and tables.
    static COMPRESSOR: RefCell<Option<Compressor>> = const { RefCell::new(None) };
}

/// Encodes as baseline JPEG at `quality` (1..=100), 4:2:0 chroma as cameras do, with
/// libjpeg-turbo's SIMD path.
pub fn encode_jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let pixels = turbojpeg::Image {
        pixels: image.as_raw().as_slice(),
        width,
        pitch: width * 3,
        height,
        format: PixelFormat::RGB,
    };
    // The decoder's pixel limit keeps images far below JPEG's 65535 a side, and the
    // settings are valid constants: a failure here is a bug, not bad input.
    COMPRESSOR.with_borrow_mut(|slot| {
        let compressor = match slot {
            Some(c) => c,
            None => slot.insert(Compressor::new().expect("allocating a TurboJPEG compressor")),
        };
        compressor
            .set_quality(i32::from(quality.clamp(1, 100)))
            .and_then(|()| compressor.set_subsamp(Subsamp::Sub2x2))
            .and_then(|()| compressor.compress_to_vec(pixels))
            .expect("encoding an in-memory RGB buffer cannot fail")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_stable_per_class() {
        assert_eq!(class_color(5), class_color(25));
        assert_ne!(class_color(0), class_color(1));
    }

    #[test]
    fn draws_the_box_outline_and_a_label_plate() {
        let mut img = RgbImage::new(200, 200);
        let a = Annotation {
            class_id: 0,
            bbox: [50.0, 60.0, 150.0, 160.0],
            label: "person 0.9".into(),
        };
        draw(&mut img, &[a]);
        let red = class_color(0);
        assert_eq!(*img.get_pixel(50, 100), red, "left edge");
        assert_eq!(*img.get_pixel(150, 100), red, "right edge");
        assert_eq!(*img.get_pixel(100, 160), red, "bottom edge");
        assert_eq!(*img.get_pixel(100, 110), Rgb([0, 0, 0]), "inside untouched");
        // Plate above the box, 10 glyphs wide, with ink on it.
        let plate: Vec<_> = (50..130).map(|x| *img.get_pixel(x, 55)).collect();
        assert!(plate.contains(&red) && plate.iter().any(|p| *p != red));
    }

    #[test]
    fn boxes_at_and_beyond_the_edges_do_not_panic() {
        let mut img = RgbImage::new(1, 1);
        let a = Annotation {
            class_id: 3,
            bbox: [0.0, 0.0, 1.0, 1.0],
            label: "a long label".into(),
        };
        draw(&mut img, &[a]);
        let mut img = RgbImage::new(30, 10);
        let a = Annotation {
            class_id: 3,
            bbox: [25.0, 0.0, 90.0, 40.0],
            label: "x".into(),
        };
        draw(&mut img, &[a]);
    }

    #[test]
    fn encodes_a_decodable_jpeg_of_the_same_size() {
        let img = RgbImage::from_pixel(31, 17, Rgb([10, 200, 30]));
        let jpeg = encode_jpeg(&img, 90);
        let back = crate::decode::decode(&jpeg, 1 << 20).unwrap().pixels;
        assert_eq!(back.dimensions(), (31, 17));
        let [r, g, b] = back.get_pixel(15, 8).0;
        assert!(r.abs_diff(10) < 8 && g.abs_diff(200) < 8 && b.abs_diff(30) < 8);
    }
}
