fn main() {
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).unwrap();
        println!("=== {path}");
        match kpi_importer::workbook::read_sheets(&bytes) {
            Ok(sheets) => for s in sheets {
                println!("--- sheet {}", s.name);
                let mut last = u32::MAX;
                for ((r, c), v) in &s.cells {
                    if *r != last { println!(); print!("{:>3}:", r + 1); last = *r; }
                    print!(" [{}] {:?}", kpi_importer::issues::a1(*r, *c), v);
                }
                println!();
            },
            Err(e) => println!("ERR {e:?}"),
        }
    }
}
