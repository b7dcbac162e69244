//! Geometry of the memory map: how large a text is, how a column of labels is pushed
//! apart, and which ranges go to the inset (and how tall each is there).

/// Advance of one character, as a fraction of the font size (monospace: 0.6 em; the
/// sans-serif title is narrower than that).
pub const CHAR_W: f64 = 0.6;
/// Ascent and descent of a text line, as fractions of the font size.
pub const ASCENT: f64 = 0.8;
pub const DESCENT: f64 = 0.25;

/// How a text is anchored at its `x` (SVG `text-anchor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    Start,
    End,
}

/// An axis-aligned box: `x0 <= x1`, `y0 <= y1`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BBox {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

#[cfg(test)]
impl BBox {
    /// Whether the two boxes share any interior point.
    pub fn overlaps(&self, o: &BBox) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }

    /// Whether the segment `a`-`b` passes through the box (Liang-Barsky clipping).
    pub fn hit_by_segment(&self, a: (f64, f64), b: (f64, f64)) -> bool {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        for (p, q) in [
            (-dx, a.0 - self.x0),
            (dx, self.x1 - a.0),
            (-dy, a.1 - self.y0),
            (dy, self.y1 - a.1),
        ] {
            if p == 0.0 {
                if q < 0.0 {
                    return false;
                }
            } else {
                let t = q / p;
                if p < 0.0 {
                    t0 = t0.max(t);
                } else {
                    t1 = t1.min(t);
                }
            }
        }
        t0 < t1
    }
}

/// The box a text of `chars` characters at font size `size` covers, its baseline at
/// `y` and anchored at `x`.
pub fn text_box(chars: usize, size: f64, x: f64, y: f64, anchor: Anchor) -> BBox {
    let w = chars as f64 * CHAR_W * size;
    let (x0, x1) = match anchor {
        Anchor::Start => (x, x + w),
        Anchor::End => (x - w, x),
    };
    BBox {
        x0,
        y0: y - ASCENT * size,
        x1,
        y1: y + DESCENT * size,
    }
}

/// Positions for items of heights `heights` that want to start at `wanted` (sorted
/// ascending), at least `gap` apart, none above `top`, and, where there is room, none
/// below `bottom`: pushed down from the top, then back up from the bottom.
pub fn stack(wanted: &[f64], heights: &[f64], gap: f64, top: f64, bottom: f64) -> Vec<f64> {
    let n = wanted.len();
    let mut y: Vec<f64> = Vec::with_capacity(n);
    for i in 0..n {
        let floor = if i == 0 {
            top
        } else {
            y[i - 1] + heights[i - 1] + gap
        };
        y.push(wanted[i].max(floor));
    }
    let mut limit = bottom;
    for i in (0..n).rev() {
        y[i] = y[i].min(limit - heights[i]);
        limit = y[i] - gap;
    }
    // Back down where the way up passed the top: the column then runs past `bottom`.
    for i in 0..n {
        let floor = if i == 0 {
            top
        } else {
            y[i - 1] + heights[i - 1] + gap
        };
        y[i] = y[i].max(floor);
    }
    y
}

/// Height in the inset of a range of `size` bytes: a log scale, one page and less at
/// [`INSET_MIN_H`], growing with each doubling, at most [`INSET_MAX_H`].
pub fn inset_height(size: u64) -> f64 {
    let pages = size as f64 / 4096.0;
    (INSET_MIN_H + 6.0 * pages.max(1.0).log2()).min(INSET_MAX_H)
}

/// Shortest and tallest range in the inset.
pub const INSET_MIN_H: f64 = 16.0;
pub const INSET_MAX_H: f64 = 64.0;

/// Runs of consecutive ranges that go to the inset: `small[i]` says range `i` (in
/// address order) does; returns `[first, last]` index pairs.
pub fn windows(small: &[bool]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (i, s) in small.iter().enumerate() {
        if !s {
            continue;
        }
        match out.last_mut() {
            Some(w) if w.1 + 1 == i => w.1 = i,
            _ => out.push((i, i)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacking_keeps_order_and_gaps() {
        let h = [10.0; 4];
        let y = stack(&[0.0, 1.0, 2.0, 100.0], &h, 5.0, 0.0, 200.0);
        assert_eq!(y, vec![0.0, 15.0, 30.0, 100.0]);
        // Pushed back up from the bottom.
        let y = stack(&[0.0, 190.0, 191.0, 192.0], &h, 5.0, 0.0, 200.0);
        assert_eq!(y, vec![0.0, 160.0, 175.0, 190.0]);
        // No room: runs past the bottom, never above the top.
        let y = stack(&[0.0, 0.0, 0.0, 0.0], &h, 5.0, 0.0, 20.0);
        assert_eq!(y, vec![0.0, 15.0, 30.0, 45.0]);
    }

    #[test]
    fn segments_and_boxes() {
        let b = BBox {
            x0: 0.0,
            y0: 0.0,
            x1: 10.0,
            y1: 10.0,
        };
        assert!(b.hit_by_segment((-5.0, 5.0), (15.0, 5.0)));
        assert!(b.hit_by_segment((5.0, 5.0), (5.0, 6.0)));
        assert!(!b.hit_by_segment((-5.0, 11.0), (15.0, 11.0)));
        assert!(!b.hit_by_segment((-5.0, -5.0), (-1.0, 20.0)));
        assert!(b.hit_by_segment((-5.0, -5.0), (15.0, 15.0)));
        assert_eq!(windows(&[true, true, false, true]), vec![(0, 1), (3, 3)]);
        assert_eq!(inset_height(32), INSET_MIN_H);
        assert_eq!(inset_height(1 << 30), INSET_MAX_H);
    }
}
