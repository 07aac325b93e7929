// Command gofloat prints Go's strconv results that tests/test_num.c holds Ferry's number code to: the reference
// Pushgateway formats with strconv.FormatFloat(v, 'g', -1, 64) and parses with strconv.ParseFloat(s, 64).
//
// Regenerate the committed fixtures (Debian: apt-get install golang-go) from the repository root:
//
//	go run tests/tools/gofloat/main.go format > tests/fixtures/num/format.txt
//	go run tests/tools/gofloat/main.go parse  > tests/fixtures/num/parse.txt
//
// "random N SEED" streams N random bit patterns in the format-fixture layout, for one-off comparisons far larger
// than what is committed. The corpus is deterministic (fixed seeds), so regenerating gives identical files.
package main

import (
	"bufio"
	"fmt"
	"math"
	"math/big"
	"math/rand"
	"os"
	"strconv"
	"strings"
)

var out = bufio.NewWriterSize(os.Stdout, 1<<20)

// formatLine: bits in hex, then 'g' and 'f' shortest outputs, separated by single spaces. 'f' outputs longer than
// 80 bytes (|v| >= 1e80 or tiny) are written as "~" to keep the file small; the test checks those against its
// slow oracle instead.
func formatLine(v float64) {
	f := strconv.FormatFloat(v, 'f', -1, 64)
	if len(f) > 80 {
		f = "~"
	}
	fmt.Fprintf(out, "%016x %s %s\n", math.Float64bits(v), strconv.FormatFloat(v, 'g', -1, 64), f)
}

// parseLine: the input as a Go-quoted string, a tab, then the result's bits in hex or "error".
func parseLine(s string) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		fmt.Fprintf(out, "%q\terror\n", s)
		return
	}
	fmt.Fprintf(out, "%q\t%016x\n", s, math.Float64bits(v))
}

func neighbours(v float64, n int, emit func(float64)) {
	lo, hi := v, v
	emit(v)
	for i := 0; i < n; i++ {
		lo = math.Nextafter(lo, math.Inf(-1))
		hi = math.Nextafter(hi, math.Inf(1))
		emit(lo)
		emit(hi)
	}
}

func formatCorpus(emit func(float64)) {
	r := rand.New(rand.NewSource(1))
	for _, v := range []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 0.1, 0.2, 0.3, 47.25, 0.000123, 1.7956077351921391e+09,
		math.MaxFloat64, math.SmallestNonzeroFloat64, 2.2250738585072014e-308, 2.225073858507201e-308,
		math.Inf(1), math.Inf(-1), math.NaN(), 9007199254740992, 9007199254740993, 1 << 62, 1e23, 5e-324,
		599944, 100000, 1.445586e+06, 1.4136584e+07, 1e21, 1e-06, 1e-07, 0.7, 999999, 1000000, 1234567} {
		emit(v)
	}
	for e := -323; e <= 308; e++ {
		v, _ := strconv.ParseFloat("1e"+strconv.Itoa(e), 64)
		neighbours(v, 2, emit)
	}
	for e := -1074; e <= 1023; e++ {
		neighbours(math.Ldexp(1, e), 1, emit)
	}
	// Around the 'g' exponent switch (1e-5, 1e-4, 1e5, 1e6) and 1e21 (JSON's switch), with short digit strings.
	for _, base := range []float64{1e-5, 1e-4, 1e5, 1e6, 1e21} {
		for i := 0; i < 60; i++ {
			neighbours(base*(1+float64(i)/10), 1, emit)
			neighbours(base*(1-float64(i)/1000), 0, emit)
		}
	}
	for i := 0; i < 2000; i++ {
		emit(float64(r.Int63n(1 << uint(1+r.Intn(62)))))
		emit(-float64(r.Int63n(10000000)))
	}
	for i := 0; i < 1500; i++ {
		emit(math.Float64frombits(r.Uint64() & (1<<52 - 1))) // subnormals
	}
	for i := 0; i < 3000; i++ {
		// Metric-like short decimals: n digits at a random scale.
		d := r.Int63n(1000000)
		s := strconv.FormatInt(d, 10) + "e" + strconv.Itoa(r.Intn(40)-20)
		v, _ := strconv.ParseFloat(s, 64)
		emit(v)
	}
	for i := 0; i < 7000; i++ {
		v := math.Float64frombits(r.Uint64())
		if math.IsNaN(v) {
			continue
		}
		emit(v)
	}
}

// exactMid returns the exact decimal expansion of the midpoint between v and its successor.
func exactMid(v float64) string {
	a := new(big.Float).SetPrec(2000).SetFloat64(v)
	b := new(big.Float).SetPrec(2000).SetFloat64(math.Nextafter(v, math.Inf(1)))
	a.Add(a, b).Quo(a, big.NewFloat(2))
	s := a.Text('f', 1100)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

func parseCorpus() {
	for _, s := range []string{"", "+", "-", ".", "+.", "-.", "e", "e5", ".e5", "1", "+1", "-1", "01", "007", "-0", "+0",
		"0", "00", "0.", ".0", ".5", "5.", "-.5", "+5.", "1.5", "1..5", "1.5.", "1e5", "1E5", "1e+5", "1e-5", "1e", "1e+",
		"1e-", "1e+-5", "1ee5", "1e5.", "1e5e", "1.e5", ".1e5", "1.5e05", "1.5E-05", "inf", "Inf", "INF", "+inf", "-inf",
		"infinity", "Infinity", "+Infinity", "-INFINITY", "infin", "infinityy", "in", "nan", "NaN", "NAN", "nAn", "+nan",
		"-nan", "nana", "0x1p3", "0x10", "0X1P-2", "1p3", "1_000", "1_0.5", "_1", "1_", " 1", "1 ", "\t1", "1\n", "1,5",
		"٣", "1e500", "-1e500", "1e309", "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308",
		"1.797693134862315807e308", "1.7976931348623158079e308", "1e-400", "-1e-400", "1e-324", "2e-324", "2.4703282292062327e-324",
		"2.4703282292062328e-324", "3e-324", "4.9406564584124654e-324", "5e-324", "2.2250738585072011e-308",
		"2.2250738585072012e-308", "2.2250738585072014e-308", "0e999999999", "0e-999999999", "1e999999999999999999",
		"1e-999999999999999999", "0.000000000000000000000000000000000000000000000000001e51", "123456789012345678901234567890",
		"9007199254740993", "9007199254740992.5", "9007199254740993.0000000000000000000001", "18446744073709551615",
		"18446744073709551616", "99999999999999999999", "1e22", "1e23", "8.98846567431158e307", "7.2057594037927933e16",
		"4503599627370496.5", "4503599627370497.5", "0.1", "0.2", "0.3", "47.25", "0.000123", "1.7956077351921391e+09",
		"1.7956077351921391e9", "100000", "1e+06", "3.14", "-0.0", "+0e0", "1e0001", "1.0000000000000000000000000001",
	} {
		parseLine(s)
	}
	long := strings.Repeat("1", 900)
	parseLine(long)
	parseLine("0." + strings.Repeat("0", 1000) + "1")
	parseLine(strings.Repeat("0", 1000) + "1.5")
	parseLine("1" + strings.Repeat("0", 308))
	parseLine("1" + strings.Repeat("0", 309))
	parseLine("0." + strings.Repeat("9", 900))
	parseLine(strings.Repeat("9", 400) + "e-400")
	r := rand.New(rand.NewSource(2))
	emitFormatted := func(v float64) {
		parseLine(strconv.FormatFloat(v, 'g', -1, 64))
		parseLine(strconv.FormatFloat(v, 'e', 16, 64))
		parseLine(strconv.FormatFloat(v, 'e', 19, 64))
	}
	for i := 0; i < 4000; i++ {
		v := math.Float64frombits(r.Uint64())
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		emitFormatted(v)
	}
	for i := 0; i < 900; i++ {
		// Exact midpoints between neighbouring doubles (ties to even), and one digit either side of them.
		var v float64
		switch i % 3 {
		case 0:
			v = math.Float64frombits(r.Uint64() >> 1)
		case 1:
			v = float64(r.Int63n(1<<53)) * math.Ldexp(1, r.Intn(40)-20)
		default:
			v = math.Float64frombits(r.Uint64() & (1<<52 - 1))
		}
		if math.IsInf(v, 0) || math.IsNaN(v) || v == math.MaxFloat64 {
			continue
		}
		m := exactMid(v)
		parseLine(m)
		parseLine(m + "1")
		if strings.Contains(m, ".") {
			parseLine(m[:len(m)-1])
		}
	}
	for i := 0; i < 3000; i++ {
		// Short decimals of every length up to 19 digits at every scale.
		nd := 1 + r.Intn(19)
		var b strings.Builder
		for j := 0; j < nd; j++ {
			b.WriteByte(byte('0' + r.Intn(10)))
		}
		s := b.String()
		p := r.Intn(nd + 1)
		parseLine(s[:p] + "." + s[p:] + "e" + strconv.Itoa(r.Intn(700)-350))
		parseLine(s + "e" + strconv.Itoa(r.Intn(60)-30))
	}
	for i := 0; i < 500; i++ {
		// 20 to 40 significant digits: beyond the 19-digit fast path.
		nd := 20 + r.Intn(21)
		var b strings.Builder
		b.WriteByte(byte('1' + r.Intn(9)))
		for j := 1; j < nd; j++ {
			b.WriteByte(byte('0' + r.Intn(10)))
		}
		parseLine(b.String() + "e" + strconv.Itoa(r.Intn(640)-340))
	}
}

func main() {
	defer out.Flush()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gofloat format|parse|random N SEED")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "format":
		fmt.Fprintln(out, "# bits g f: strconv.FormatFloat(v, 'g'|'f', -1, 64); generated by tests/tools/gofloat (go run tests/tools/gofloat/main.go format)")
		formatCorpus(formatLine)
	case "parse":
		fmt.Fprintln(out, "# \"input\"<TAB>bits|error: strconv.ParseFloat(s, 64); generated by tests/tools/gofloat (go run tests/tools/gofloat/main.go parse)")
		parseCorpus()
	case "random":
		n, _ := strconv.Atoi(os.Args[2])
		seed, _ := strconv.ParseInt(os.Args[3], 10, 64)
		r := rand.New(rand.NewSource(seed))
		for i := 0; i < n; i++ {
			v := math.Float64frombits(r.Uint64())
			if i%2 == 1 {
				v = float64(r.Int63n(1e9)) / math.Pow10(r.Intn(12))
			}
			formatLine(v)
		}
	}
}
