//! Image bytes to RGB pixels: format sniffing, a pixel budget checked from the header
//! before anything is allocated, and EXIF orientation applied.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

/// Why a body could not be turned into pixels. Every variant is the caller's fault
/// (a 4xx), never the service's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("the body is empty")]
    Empty,
    #[error("unsupported image format: expected JPEG, PNG or WebP")]
    UnsupportedFormat,
    #[error("image is {width}x{height} = {pixels} pixels, over the limit of {max_pixels}")]
    TooManyPixels {
        width: u32,
        height: u32,
        pixels: u64,
        max_pixels: u64,
    },
    #[error("image has no pixels ({width}x{height})")]
    ZeroSized { width: u32, height: u32 },
    #[error("image data is corrupt or truncated: {0}")]
    Corrupt(String),
}

/// A decoded, upright image.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub pixels: RgbImage,
    pub format: ImageFormat,
}

/// Decodes JPEG, PNG (8/16-bit, grey, alpha) or WebP into 8-bit RGB, upright.
///
/// The header's dimensions are checked against `max_pixels` before the pixel buffer is
/// allocated, so a small file that claims to be enormous (a decompression bomb) costs nothing.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<Decoded, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    let format = match reader.format() {
        Some(f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP)) => f,
        _ => return Err(DecodeError::UnsupportedFormat),
    };
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(DecodeError::Corrupt(
            "JPEG is truncated: no end-of-image marker after its last scan".into(),
        ));
    }
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels == 0 {
        return Err(DecodeError::ZeroSized { width, height });
    }
    if pixels > max_pixels {
        return Err(DecodeError::TooManyPixels {
            width,
            height,
            pixels,
            max_pixels,
        });
    }
    // Orientation is advisory: an unreadable EXIF block leaves the image as stored.
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(Decoded {
        pixels: image.into_rgb8(),
        format,
    })
}

/// Whether an end-of-image marker (FF D9) follows the last start-of-scan (FF DA).
///
/// The JPEG decoder fills a truncated scan with grey instead of failing, which would
/// silently detect objects in half an image. Inside entropy-coded data every 0xFF is
/// followed by 0x00 or a restart marker, so FF D9 there can only be the real end; an
/// EXIF thumbnail's own markers come before the main scan.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let Some(last_scan) = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]) else {
        return false;
    };
    bytes[last_scan..].windows(2).any(|w| w == [0xFF, 0xD9])
}

fn corrupt(e: image::ImageError) -> DecodeError {
    match e {
        image::ImageError::Unsupported(_) => DecodeError::UnsupportedFormat,
        other => DecodeError::Corrupt(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::png::PngEncoder;
    use image::{ExtendedColorType, ImageEncoder};

    fn png(width: u32, height: u32, color: ExtendedColorType, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PngEncoder::new(&mut out)
            .write_image(data, width, height, color)
            .unwrap();
        out
    }

    #[test]
    fn decodes_grey_16_bit_and_alpha_pngs_to_rgb() {
        let grey = png(2, 1, ExtendedColorType::L8, &[0, 255]);
        let d = decode(&grey, 100).unwrap();
        assert_eq!(d.pixels.get_pixel(1, 0).0, [255, 255, 255]);

        let deep: Vec<u8> = [0xffffu16, 0x0000, 0x8000]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        let d = decode(&png(1, 1, ExtendedColorType::Rgb16, &deep), 100).unwrap();
        assert_eq!(d.pixels.get_pixel(0, 0).0, [255, 0, 128]);

        let alpha = png(1, 1, ExtendedColorType::Rgba8, &[10, 20, 30, 0]);
        let d = decode(&alpha, 100).unwrap();
        assert_eq!(d.pixels.get_pixel(0, 0).0, [10, 20, 30]);
    }

    #[test]
    fn refuses_a_bomb_from_its_header_alone() {
        // A valid PNG header claiming 100000x100000 followed by nothing: the limit must
        // trip before any attempt to read (or allocate) the pixels.
        let mut bomb = png(1, 1, ExtendedColorType::L8, &[0]);
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        let err = decode(&bomb, 40_000_000).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::TooManyPixels {
                    pixels: 10_000_000_000,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn truncated_and_foreign_bytes_are_errors_not_panics() {
        let full = png(64, 64, ExtendedColorType::Rgb8, &[7; 64 * 64 * 3]);
        for cut in [8, 20, 40, full.len() / 2, full.len() - 13] {
            let err = decode(&full[..cut], 1 << 20).unwrap_err();
            assert!(
                matches!(err, DecodeError::Corrupt(_)),
                "cut at {cut}: {err:?}"
            );
        }
        assert_eq!(decode(b"", 10).unwrap_err(), DecodeError::Empty);
        assert_eq!(
            decode(b"hello, world", 10).unwrap_err(),
            DecodeError::UnsupportedFormat
        );
        assert_eq!(
            decode(b"GIF89a\x01\x00\x01\x00", 10).unwrap_err(),
            DecodeError::UnsupportedFormat
        );

        let mut jpeg = Vec::new();
        let noise: Vec<u8> = (0..64 * 64 * 3).map(|i| (i * 7919 % 251) as u8).collect();
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
            .encode(&noise, 64, 64, ExtendedColorType::Rgb8)
            .unwrap();
        assert!(decode(&jpeg, 1 << 20).is_ok());
        for cut in [4, jpeg.len() / 2, jpeg.len() - 2] {
            let err = decode(&jpeg[..cut], 1 << 20).unwrap_err();
            assert!(
                matches!(err, DecodeError::Corrupt(_)),
                "JPEG cut at {cut}: {err:?}"
            );
        }
    }

    #[test]
    fn applies_exif_orientation() {
        // A 2x1 JPEG tagged "rotate 90 CW" (orientation 6) must come out 1x2.
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
            .encode(&[255, 0, 0, 0, 0, 255], 2, 1, ExtendedColorType::Rgb8)
            .unwrap();
        let tagged = with_exif_orientation(&jpeg, 6);
        let d = decode(&tagged, 100).unwrap();
        assert_eq!(d.pixels.dimensions(), (1, 2));
        let untagged = decode(&jpeg, 100).unwrap();
        assert_eq!(untagged.pixels.dimensions(), (2, 1));
    }

    #[test]
    fn decodes_webp() {
        let mut webp = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
            .encode(&[1, 2, 3, 4, 5, 6], 2, 1, ExtendedColorType::Rgb8)
            .unwrap();
        let d = decode(&webp, 100).unwrap();
        assert_eq!(d.format, ImageFormat::WebP);
        assert_eq!(d.pixels.get_pixel(1, 0).0, [4, 5, 6]);
    }

    /// PNG's chunk CRC (ISO 3309), so the forged header is otherwise valid.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// Inserts an APP1 EXIF segment with one Orientation entry right after SOI.
    fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = Vec::new();
        tiff.extend_from_slice(b"MM\x00\x2a\x00\x00\x00\x08"); // big-endian, IFD at 8
        tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
        tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
        tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
        tiff.extend_from_slice(&1u32.to_be_bytes()); // count
        tiff.extend_from_slice(&orientation.to_be_bytes());
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
        let mut app1 = b"Exif\x00\x00".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xff, 0xe1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }
}

#[cfg(test)]
mod mutation {
    //! A bounded, deterministic stand-in for the cargo-fuzz target (`predictor/fuzz`,
    //! nightly only): real images with bytes flipped, inserted and cut must decode or fail
    //! cleanly, never panic.

    use super::*;

    fn images() -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images");
        ["zidane.jpg", "chelsea.png"]
            .iter()
            .map(|n| std::fs::read(dir.join(n)).unwrap())
            .collect()
    }

    #[test]
    fn mutated_images_never_panic_the_decoder() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut outcomes = [0usize; 2];
        for original in images() {
            for _ in 0..150 {
                let mut bytes = original.clone();
                for _ in 0..=(next() % 8) {
                    let at = (next() as usize) % bytes.len();
                    match next() % 3 {
                        0 => bytes[at] = next() as u8,
                        1 => bytes.insert(at, next() as u8),
                        _ => bytes.truncate(at.max(1)),
                    }
                }
                outcomes[usize::from(decode(&bytes, 4_000_000).is_ok())] += 1;
            }
        }
        // Both outcomes occur, so the mutations reach past the header checks.
        assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
    }
}
