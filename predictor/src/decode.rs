//! Image bytes to RGB pixels: format sniffing, a pixel budget checked from the header
//! before anything is allocated, and EXIF orientation applied.
//!
//! JPEG goes through libjpeg-turbo (SIMD, and the same islow IDCT and smooth chroma
//! upsampling as Pillow and OpenCV, so pixels match what the model's reference pipeline
//! saw); PNG and WebP through the `image` crate.

use std::cell::RefCell;
use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};
use turbojpeg::{Colorspace, Decompressor, PixelFormat};

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
    let format = match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP)) => f,
        _ => return Err(DecodeError::UnsupportedFormat),
    };
    let pixels = if format == ImageFormat::Jpeg {
        decode_jpeg(bytes, max_pixels)?
    } else {
        decode_other(bytes, format, max_pixels)?
    };
    Ok(Decoded { pixels, format })
}

fn check_size(width: u32, height: u32, max_pixels: u64) -> Result<(), DecodeError> {
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
    Ok(())
}

thread_local! {
    /// A TurboJPEG handle per thread: creating one allocates libjpeg's state each time.
    static JPEG: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

fn decode_jpeg(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, DecodeError> {
    if !jpeg_is_complete(bytes) {
        return Err(DecodeError::Corrupt(
            "JPEG is truncated: no end-of-image marker after its last scan".into(),
        ));
    }
    let turbo = |e: turbojpeg::Error| DecodeError::Corrupt(e.to_string());
    let image = JPEG.with_borrow_mut(|slot| {
        let decompressor = match slot {
            Some(d) => d,
            None => slot.insert(Decompressor::new().map_err(turbo)?),
        };
        let header = decompressor.read_header(bytes).map_err(turbo)?;
        let (width, height) = (header.width as u32, header.height as u32);
        check_size(width, height, max_pixels)?;
        // CMYK and YCCK (Adobe) JPEGs cannot be converted to RGB by TurboJPEG: take the
        // inks and convert here.
        let cmyk = matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK);
        let format = if cmyk {
            PixelFormat::CMYK
        } else {
            PixelFormat::RGB
        };
        let mut pixels = vec![0u8; header.width * header.height * format.size()];
        let output = turbojpeg::Image {
            pixels: pixels.as_mut_slice(),
            width: header.width,
            pitch: header.width * format.size(),
            height: header.height,
            format,
        };
        decompressor.decompress(bytes, output).map_err(turbo)?;
        if cmyk {
            pixels = cmyk_to_rgb(&pixels);
        }
        Ok::<_, DecodeError>(
            RgbImage::from_raw(width, height, pixels).expect("the buffer is width * height * 3"),
        )
    })?;
    // Orientation is advisory: an unreadable EXIF block leaves the image as stored.
    Ok(match exif(bytes).and_then(Orientation::from_exif_chunk) {
        Some(orientation) if orientation != Orientation::NoTransforms => {
            let mut upright = DynamicImage::ImageRgb8(image);
            upright.apply_orientation(orientation);
            upright.into_rgb8()
        }
        _ => image,
    })
}

/// Adobe's CMYK JPEGs store inverted inks, so each channel is simply `ink * key / 255`.
fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    cmyk.chunks_exact(4)
        .flat_map(|p| {
            let k = u32::from(p[3]);
            [0, 1, 2].map(|i| ((u32::from(p[i]) * k + 127) / 255) as u8)
        })
        .collect()
}

/// The TIFF block of the first APP1 `Exif` segment before the first scan, if any.
fn exif(bytes: &[u8]) -> Option<&[u8]> {
    let mut at = 2; // after SOI
    loop {
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        match marker {
            0xFF => at += 1, // fill byte
            0x01 | 0xD0..=0xD7 => at += 2,
            0xDA | 0xD9 => return None,
            _ => {
                let len = usize::from(u16::from_be_bytes([
                    *bytes.get(at + 2)?,
                    *bytes.get(at + 3)?,
                ]));
                let segment = bytes.get(at + 4..at + 2 + len.max(2))?;
                if marker == 0xE1
                    && let Some(tiff) = segment.strip_prefix(b"Exif\0\0")
                {
                    return Some(tiff);
                }
                at += 2 + len;
            }
        }
    }
}

fn decode_other(
    bytes: &[u8],
    format: ImageFormat,
    max_pixels: u64,
) -> Result<RgbImage, DecodeError> {
    let mut reader = ImageReader::new(Cursor::new(bytes));
    reader.set_format(format);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    check_size(width, height, max_pixels)?;
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(image.into_rgb8())
}

/// Whether an end-of-image marker (FF D9) follows the last start-of-scan (FF DA).
///
/// A JPEG decoder fills a truncated scan with grey (libjpeg with a warning), which would
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

        let noise: Vec<u8> = (0..64 * 64 * 3).map(|i| (i * 7919 % 251) as u8).collect();
        let jpeg = crate::draw::encode_jpeg(&RgbImage::from_raw(64, 64, noise).unwrap(), 90);
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
        let red_blue = RgbImage::from_raw(2, 1, vec![255, 0, 0, 0, 0, 255]).unwrap();
        let jpeg = crate::draw::encode_jpeg(&red_blue, 90);
        let tagged = with_exif_orientation(&jpeg, 6);
        let d = decode(&tagged, 100).unwrap();
        assert_eq!(d.pixels.dimensions(), (1, 2));
        let untagged = decode(&jpeg, 100).unwrap();
        assert_eq!(untagged.pixels.dimensions(), (2, 1));
    }

    #[test]
    fn converts_adobe_cmyk_jpegs_to_rgb() {
        // Inverted inks as Adobe stores them: full "paper" with the key at half is mid grey,
        // and with no key ink the C, M, Y values are the colour itself.
        let inks = [255u8, 255, 255, 128, 200, 100, 50, 255];
        let mut compressor = turbojpeg::Compressor::new().unwrap();
        compressor.set_quality(100).unwrap();
        compressor.set_subsamp(turbojpeg::Subsamp::None).unwrap();
        let image = turbojpeg::Image {
            pixels: &inks[..],
            width: 2,
            pitch: 8,
            height: 1,
            format: PixelFormat::CMYK,
        };
        let jpeg = compressor.compress_to_vec(image).unwrap();
        let d = decode(&jpeg, 100).unwrap();
        assert_eq!(d.pixels.dimensions(), (2, 1));
        let near =
            |got: [u8; 3], want: [u8; 3]| got.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= 6);
        assert!(
            near(d.pixels.get_pixel(0, 0).0, [128, 128, 128]),
            "{:?}",
            d.pixels
        );
        assert!(
            near(d.pixels.get_pixel(1, 0).0, [200, 100, 50]),
            "{:?}",
            d.pixels
        );
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
