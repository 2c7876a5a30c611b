//! A photo-like JPEG, made on the spot instead of committing megabytes: soft
//! light falling across the frame, textured surfaces (value noise at several
//! scales), a dozen objects with soft edges, and sensor grain; saved at
//! quality 92 as a camera does. 4000×3000 comes out at about 2–3 MB.
//!
//! Shared with the benchmarks (`bench/tools`'s `photo`), by path.

/// A `width`×`height` photo-like JPEG; `seed` picks the scene.
pub(crate) fn camera_jpeg(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32
    };
    // (cells across, weight): broad light to fine texture.
    let octaves = [
        (6usize, 0.45f32),
        (24, 0.25),
        (96, 0.16),
        (384, 0.1),
        (1536, 0.07),
    ];
    let lattices: Vec<Vec<f32>> = octaves
        .iter()
        .map(|(n, _)| (0..(n + 1) * (n + 1)).map(|_| rnd()).collect())
        .collect();
    let objects: Vec<(f32, f32, f32, [f32; 3])> = (0..12)
        .map(|_| {
            (
                rnd() * width as f32,
                rnd() * height as f32,
                (0.04 + rnd() * 0.18) * width as f32,
                [rnd(), rnd(), rnd()],
            )
        })
        .collect();
    let smooth = |t: f32| t * t * (3.0 - 2.0 * t);
    let mut px = vec![0u8; (width * height * 3) as usize];
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
            let mut v = 0.0;
            for ((n, weight), lattice) in octaves.iter().zip(&lattices) {
                let (gx, gy) = (fx * *n as f32, fy * *n as f32);
                let (ix, iy) = (gx as usize, gy as usize);
                let (tx, ty) = (smooth(gx - ix as f32), smooth(gy - iy as f32));
                let at = |a: usize, b: usize| lattice[b.min(*n) * (n + 1) + a.min(*n)];
                let top = at(ix, iy) * (1.0 - tx) + at(ix + 1, iy) * tx;
                let bottom = at(ix, iy + 1) * (1.0 - tx) + at(ix + 1, iy + 1) * tx;
                v += (top * (1.0 - ty) + bottom * ty) * weight;
            }
            let light = 0.3 + 0.5 * (1.0 - fy) + 0.2 * fx;
            let mut c = [
                light * (0.55 + v * 0.55),
                light * (0.5 + v * 0.5),
                light * (0.45 + v * 0.45),
            ];
            for (ox, oy, r, color) in &objects {
                let d = ((x as f32 - ox).powi(2) + (y as f32 - oy).powi(2)).sqrt();
                let k =
                    (1.0 - ((d - r) / (0.006 * width as f32)).clamp(0.0, 1.0)) * (0.7 + 0.3 * v);
                for ch in 0..3 {
                    c[ch] =
                        c[ch] * (1.0 - k) + color[ch] * k * (0.5 + 0.6 * light) * (0.8 + 0.4 * v);
                }
            }
            let i = ((y * width + x) * 3) as usize;
            for ch in 0..3 {
                let grain = (rnd() - 0.5) * 0.06;
                px[i + ch] = ((c[ch] + grain).clamp(0.0, 1.0) * 255.0) as u8;
            }
        }
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
        .encode(&px, width, height, image::ExtendedColorType::Rgb8)
        .expect("encoding to memory");
    out
}
