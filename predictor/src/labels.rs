//! Class names: from the model's `names` metadata, or COCO's 80 when it has none.

/// The 80 COCO class names, in the order COCO-trained YOLO models emit them.
pub const COCO: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// Parses Ultralytics' `names` metadata, a Python dict literal such as
/// `{0: 'person', 1: "bicycle"}`, into names indexed by class id. `None` if it is not
/// of that shape or the ids are not 0..n.
pub fn parse_names(raw: &str) -> Option<Vec<String>> {
    let body = raw.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut pairs: Vec<(usize, String)> = Vec::new();
    let mut rest = body.trim();
    while !rest.is_empty() {
        let (id, after) = rest.split_once(':')?;
        let id: usize = id.trim().parse().ok()?;
        let after = after.trim_start();
        let quote = after.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let end = after[1..].find(quote)? + 1;
        pairs.push((id, after[1..end].to_string()));
        rest = after[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    pairs.sort_by_key(|(id, _)| *id);
    let ids_dense = pairs.iter().enumerate().all(|(i, (id, _))| i == *id);
    (ids_dense && !pairs.is_empty()).then(|| pairs.into_iter().map(|(_, n)| n).collect())
}

/// Names for `classes` class ids: the model's own when they fit, else COCO's, else `class N`.
pub fn resolve(model_names: Option<Vec<String>>, classes: usize) -> Vec<String> {
    match model_names {
        Some(names) if names.len() == classes => names,
        _ if classes == COCO.len() => COCO.iter().map(|s| s.to_string()).collect(),
        _ => (0..classes).map(|i| format!("class {i}")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ultralytics_metadata() {
        let names = parse_names("{0: 'person', 1: \"bicycle\", 2: 'traffic light'}").unwrap();
        assert_eq!(names, ["person", "bicycle", "traffic light"]);
    }

    #[test]
    fn rejects_gaps_and_garbage() {
        assert_eq!(parse_names("{0: 'a', 2: 'b'}"), None);
        assert_eq!(parse_names("person,bicycle"), None);
        assert_eq!(parse_names("{}"), None);
    }

    #[test]
    fn falls_back_to_coco_then_numbers() {
        assert_eq!(resolve(None, 80)[79], "toothbrush");
        assert_eq!(resolve(Some(vec!["x".into()]), 80)[0], "person");
        assert_eq!(resolve(None, 2), ["class 0", "class 1"]);
    }
}
