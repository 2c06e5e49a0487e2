"""GC content from a base-count table (base <TAB> count)."""

counts = {}
with open(snakemake.input[0]) as table:
    for line in table:
        base, count = line.split("\t")
        counts[base.upper()] = counts.get(base.upper(), 0) + int(count)

total = sum(counts.values())
gc = (counts.get("G", 0) + counts.get("C", 0)) / total if total else 0.0
with open(snakemake.output[0], "w") as out:
    out.write(f"{gc:.{snakemake.params.precision}f}\n")
