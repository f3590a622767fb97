//! Burning text and a machine-readable frame counter into a frame's luma (Y) plane: a 3x5 bitmap font
//! for people, and a strip of black/white cells (the counter in binary) that a test reads back after
//! H.264 and decoding.

/// Bits of the counter strip: it wraps after 2^24 frames (about 19 days at 10 fps).
pub const COUNTER_BITS: u32 = 24;

/// Rows of the 3x5 glyphs, three bits each (the highest bit on the left).
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b011, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        ':' => [0b000, 0b010, 0b000, 0b010, 0b000],
        '.' => [0b000, 0b000, 0b000, 0b000, 0b010],
        '-' => [0b000, 0b000, 0b111, 0b000, 0b000],
        _ => [0; 5],
    }
}

fn fill(y: &mut [u8], width: usize, x0: usize, y0: usize, w: usize, h: usize, value: u8) {
    let height = y.len() / width;
    for row in y0..(y0 + h).min(height) {
        let line = &mut y[row * width..(row + 1) * width];
        for px in line.iter_mut().take((x0 + w).min(width)).skip(x0) {
            *px = value;
        }
    }
}

/// Writes `text` white on a black box at (`x`, `y0`), each font cell `scale` pixels square.
pub fn text(y: &mut [u8], width: usize, x: usize, y0: usize, scale: usize, text: &str) {
    let chars = text.chars().count();
    fill(y, width, x, y0, (chars * 4 + 1) * scale, 7 * scale, 16);
    for (i, c) in text.chars().enumerate() {
        let left = x + (i * 4 + 1) * scale;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..3 {
                if bits & (0b100 >> col) != 0 {
                    let top = y0 + (row + 1) * scale;
                    fill(y, width, left + col * scale, top, scale, scale, 235);
                }
            }
        }
    }
}

/// The counter strip's rows: the bottom `height / 12` rows (at least 8).
fn strip_rows(height: usize) -> (usize, usize) {
    let rows = (height / 12).max(8).min(height);
    (height - rows, rows)
}

/// Draws `counter` (its low [`COUNTER_BITS`] bits, most significant on the left) across the bottom.
pub fn counter_strip(y: &mut [u8], width: usize, height: usize, counter: u64) {
    let (top, rows) = strip_rows(height);
    let cell = width / COUNTER_BITS as usize;
    fill(y, width, 0, top, width, rows, 16);
    for bit in 0..COUNTER_BITS {
        if counter >> (COUNTER_BITS - 1 - bit) & 1 == 1 {
            fill(y, width, bit as usize * cell, top, cell, rows, 235);
        }
    }
}

/// Reads the counter strip back from a (possibly decoded, lossy) luma plane.
pub fn read_counter(y: &[u8], width: usize, height: usize) -> u64 {
    let (top, rows) = strip_rows(height);
    let cell = width / COUNTER_BITS as usize;
    let row = top + rows / 2;
    (0..COUNTER_BITS).fold(0, |acc, bit| {
        let x = bit as usize * cell + cell / 2;
        (acc << 1) | u64::from(y[row * width + x] > 128)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_strip_reads_back_what_was_drawn() {
        let (width, height) = (320, 240);
        let mut y = vec![90; width * height];
        for counter in [0, 1, 80, 12_345, (1 << COUNTER_BITS) - 1] {
            counter_strip(&mut y, width, height, counter);
            assert_eq!(read_counter(&y, width, height), counter);
        }
    }

    #[test]
    fn text_lights_the_glyph_cells_and_clips_at_the_frame_edge() {
        let width = 40;
        let mut y = vec![0; width * 20];
        text(&mut y, width, 0, 0, 2, "1");
        // The middle column of "1" (font column 1, rows 1..5) is lit: pixel (2 + 2, 2).
        assert_eq!(y[2 * width + 4], 235);
        assert_eq!(y[2 * width + 2], 16);
        text(&mut y, width, 30, 10, 4, "88:88");
    }
}
