//! Raw model output to detections: layout chosen from the output shape, confidence
//! threshold, class-wise non-maximum suppression, boxes mapped back to original pixels.

use crate::engine::Tensor;
use crate::preprocess::Letterbox;

/// How a YOLO head lays out its predictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// YOLOv8 / YOLO11: `[1, 4 + C, N]`, class scores only.
    AttributesFirst { classes: usize, anchors: usize },
    /// YOLOv5 / YOLOv7: `[1, N, 5 + C]`, with an objectness score before the classes.
    AnchorsFirst { classes: usize, anchors: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported model output shape {0:?}: expected [1, 4+C, N] (YOLOv8/11) or [1, N, 5+C] (YOLOv5/7)"
)]
pub struct LayoutError(pub Vec<usize>);

impl Layout {
    /// Tells the layouts apart by which axis is longer: there are always far more
    /// anchors (thousands) than attributes (tens).
    pub fn from_shape(shape: &[usize]) -> Result<Layout, LayoutError> {
        let err = || LayoutError(shape.to_vec());
        let [batch, a, b] = *shape else {
            return Err(err());
        };
        if batch != 1 {
            return Err(err());
        }
        if a < b && a > 4 {
            Ok(Layout::AttributesFirst {
                classes: a - 4,
                anchors: b,
            })
        } else if b < a && b > 5 {
            Ok(Layout::AnchorsFirst {
                classes: b - 5,
                anchors: a,
            })
        } else {
            Err(err())
        }
    }

    pub fn classes(&self) -> usize {
        match *self {
            Layout::AttributesFirst { classes, .. } | Layout::AnchorsFirst { classes, .. } => {
                classes
            }
        }
    }
}

/// Thresholds for turning scores into detections.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Thresholds {
    pub confidence: f32,
    pub iou: f32,
    pub max_detections: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            confidence: 0.25,
            iou: 0.45,
            max_detections: 300,
        }
    }
}

/// One detected object, in original image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub class_id: usize,
    pub score: f32,
    /// `[x1, y1, x2, y2]`.
    pub bbox: [f32; 4],
}

/// Decodes `output`, keeps what scores at least `t.confidence`, suppresses overlaps per
/// class, and maps boxes back through `letterbox`. Sorted by score, best first.
pub fn detections(
    output: &Tensor,
    t: &Thresholds,
    letterbox: &Letterbox,
) -> Result<Vec<Detection>, LayoutError> {
    let layout = Layout::from_shape(&output.shape)?;
    let mut candidates = candidates(&output.data, layout, t.confidence);
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept = nms(&candidates, t.iou, t.max_detections);
    for d in &mut kept {
        let (x1, y1) = letterbox.to_original(d.bbox[0], d.bbox[1]);
        let (x2, y2) = letterbox.to_original(d.bbox[2], d.bbox[3]);
        d.bbox = [x1, y1, x2, y2];
    }
    Ok(kept)
}

/// Every anchor whose best class clears `confidence`, box as corners in input pixels.
fn candidates(data: &[f32], layout: Layout, confidence: f32) -> Vec<Detection> {
    let mut out = Vec::new();
    let corners =
        |cx: f32, cy: f32, w: f32, h: f32| [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0];
    match layout {
        Layout::AttributesFirst { classes, anchors } => {
            // Row-major [4 + C][N]: walk class rows, tracking each anchor's best so far,
            // so memory is read sequentially.
            let mut best = vec![(0usize, f32::MIN); anchors];
            for c in 0..classes {
                let row = &data[(4 + c) * anchors..][..anchors];
                for (b, &s) in best.iter_mut().zip(row) {
                    if s > b.1 {
                        *b = (c, s);
                    }
                }
            }
            let at = |attr: usize, i: usize| data[attr * anchors + i];
            for (i, &(class_id, score)) in best.iter().enumerate() {
                if score >= confidence {
                    let bbox = corners(at(0, i), at(1, i), at(2, i), at(3, i));
                    out.push(Detection {
                        class_id,
                        score,
                        bbox,
                    });
                }
            }
        }
        Layout::AnchorsFirst { classes, anchors } => {
            for row in data.chunks_exact(5 + classes).take(anchors) {
                let objectness = row[4];
                if objectness < confidence {
                    continue;
                }
                let (class_id, class_score) =
                    row[5..]
                        .iter()
                        .enumerate()
                        .fold(
                            (0, f32::MIN),
                            |best, (c, &s)| if s > best.1 { (c, s) } else { best },
                        );
                let score = objectness * class_score;
                if score >= confidence {
                    let bbox = corners(row[0], row[1], row[2], row[3]);
                    out.push(Detection {
                        class_id,
                        score,
                        bbox,
                    });
                }
            }
        }
    }
    out
}

/// Intersection over union of two corner boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Greedy non-maximum suppression within each class. `sorted` must be best first.
pub fn nms(sorted: &[Detection], iou_threshold: f32, max: usize) -> Vec<Detection> {
    let mut kept: Vec<Detection> = Vec::new();
    for d in sorted {
        if kept.len() == max {
            break;
        }
        let overlaps = kept
            .iter()
            .any(|k| k.class_id == d.class_id && iou(&k.bbox, &d.bbox) > iou_threshold);
        if !overlaps {
            kept.push(*d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(class_id: usize, score: f32, bbox: [f32; 4]) -> Detection {
        Detection {
            class_id,
            score,
            bbox,
        }
    }

    #[test]
    fn layout_is_chosen_from_the_shape() {
        assert_eq!(
            Layout::from_shape(&[1, 84, 8400]),
            Ok(Layout::AttributesFirst {
                classes: 80,
                anchors: 8400
            })
        );
        assert_eq!(
            Layout::from_shape(&[1, 25200, 85]),
            Ok(Layout::AnchorsFirst {
                classes: 80,
                anchors: 25200
            })
        );
        assert!(Layout::from_shape(&[1, 84]).is_err());
        assert!(Layout::from_shape(&[2, 84, 8400]).is_err());
        assert!(Layout::from_shape(&[1, 3, 3]).is_err());
    }

    #[test]
    fn nms_suppresses_overlaps_within_a_class_only() {
        let sorted = [
            det(0, 0.9, [0.0, 0.0, 10.0, 10.0]),
            det(0, 0.8, [1.0, 1.0, 11.0, 11.0]), // IoU 0.68 with the first: dropped
            det(1, 0.7, [1.0, 1.0, 11.0, 11.0]), // other class: kept
            det(0, 0.6, [20.0, 20.0, 30.0, 30.0]), // no overlap: kept
            det(0, 0.5, [5.0, 0.0, 15.0, 10.0]), // IoU 0.33 with the first: kept
        ];
        let kept = nms(&sorted, 0.45, 300);
        let scores: Vec<f32> = kept.iter().map(|d| d.score).collect();
        assert_eq!(scores, [0.9, 0.7, 0.6, 0.5]);
        assert_eq!(nms(&sorted, 0.45, 2).len(), 2);
    }

    #[test]
    fn iou_of_known_boxes() {
        assert_eq!(iou(&[0.0, 0.0, 2.0, 2.0], &[1.0, 0.0, 3.0, 2.0]), 2.0 / 6.0);
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[2.0, 2.0, 3.0, 3.0]), 0.0);
        assert_eq!(iou(&[0.0, 0.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 0.0]), 0.0);
    }

    fn identity() -> Letterbox {
        Letterbox {
            scale: 1.0,
            pad_x: 0.0,
            pad_y: 0.0,
            width: 640,
            height: 640,
        }
    }

    /// `[1, 4 + classes, anchors]` with the given anchors set and every other score zero.
    fn v8(classes: usize, anchors: usize, set: &[(usize, [f32; 4], usize, f32)]) -> Tensor {
        let mut data = vec![0.0; (4 + classes) * anchors];
        for &(i, [cx, cy, w, h], class, score) in set {
            for (attr, v) in [cx, cy, w, h].into_iter().enumerate() {
                data[attr * anchors + i] = v;
            }
            data[(4 + class) * anchors + i] = score;
        }
        Tensor {
            shape: vec![1, 4 + classes, anchors],
            data,
        }
    }

    #[test]
    fn decodes_the_v8_layout() {
        let out = v8(
            2,
            10,
            &[
                (1, [200.0, 200.0, 40.0, 40.0], 1, 0.9),
                (4, [100.0, 100.0, 20.0, 20.0], 0, 0.3),
                (7, [300.0, 300.0, 10.0, 10.0], 1, 0.2), // under the threshold
            ],
        );
        let d = detections(&out, &Thresholds::default(), &identity()).unwrap();
        assert_eq!(
            d,
            [
                det(1, 0.9, [180.0, 180.0, 220.0, 220.0]),
                det(0, 0.3, [90.0, 90.0, 110.0, 110.0])
            ]
        );
    }

    #[test]
    fn decodes_the_v7_layout_with_objectness() {
        // Anchors of [cx, cy, w, h, obj, c0, c1]; score = obj * best class.
        let mut data = vec![
            50.0, 50.0, 10.0, 10.0, 0.9, 0.1, 0.8, // 0.72, class 1
            60.0, 60.0, 10.0, 10.0, 0.2, 0.9, 0.1, // objectness under threshold
            300.0, 300.0, 100.0, 50.0, 0.5, 0.4, 0.3, // 0.2: under threshold after product
        ];
        data.resize(7 * 12, 0.0); // more anchors than attributes, as in any real model
        let out = Tensor {
            shape: vec![1, 12, 7],
            data,
        };
        let lb = Letterbox {
            scale: 0.5,
            pad_x: 0.0,
            pad_y: 140.0,
            width: 1280,
            height: 720,
        };
        let d = detections(&out, &Thresholds::default(), &lb).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].class_id, 1);
        assert!((d[0].score - 0.72).abs() < 1e-6);
        // (45, 45) in input pixels is above the letterbox band: clamped to the top edge.
        assert_eq!(d[0].bbox, [90.0, 0.0, 110.0, 0.0]);
    }
}
