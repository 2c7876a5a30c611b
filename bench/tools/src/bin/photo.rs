//! Writes photo-like camera JPEGs for the image benchmarks (the tests' own
//! generator, shared by path): `photo DIR COUNT [WIDTH HEIGHT]` writes
//! DIR/photo-<i>.jpg, each scene its own.

#[path = "../../../../tests/integration/common/photo.rs"]
mod photo;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: photo DIR COUNT [WIDTH HEIGHT]");
        std::process::exit(2);
    }
    let dir = std::path::Path::new(&args[1]);
    let count: u64 = args[2].parse().expect("COUNT: a number");
    let width: u32 = args.get(3).map_or(4000, |w| w.parse().expect("WIDTH"));
    let height: u32 = args.get(4).map_or(3000, |h| h.parse().expect("HEIGHT"));
    std::fs::create_dir_all(dir).expect("DIR");
    let made: Vec<u64> = (0..count).collect();
    std::thread::scope(|s| {
        for chunk in made.chunks(count.div_ceil(2).max(1) as usize) {
            s.spawn(move || {
                for i in chunk {
                    let path = dir.join(format!("photo-{i}.jpg"));
                    std::fs::write(&path, photo::camera_jpeg(width, height, *i + 1))
                        .expect("writing the photo");
                }
            });
        }
    });
}
