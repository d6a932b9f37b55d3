package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// sample is what one scrape of the operator's metrics says.
type sample struct {
	requests  map[string]float64 // rest_client_requests_total by method
	rssBytes  float64
	heapBytes float64 // go_memstats_heap_inuse_bytes
	cpuSecs   float64
	at        time.Time
}

func scrape(ctx context.Context, url string) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return sample{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return sample{}, err
	}
	defer resp.Body.Close()
	s := sample{requests: map[string]float64{}, at: time.Now()}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 64<<20))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		s.add(sc.Text())
	}
	return s, sc.Err()
}

func (s *sample) add(line string) {
	name, rest, _ := strings.Cut(line, " ")
	if strings.HasPrefix(line, "#") {
		return
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return
	}
	if i := strings.Index(name, "{"); i >= 0 && strings.Contains(line, "} ") {
		labels := line[i:strings.Index(line, "} ")]
		name = name[:i]
		fields = strings.Fields(line[strings.Index(line, "} ")+2:])
		if name == "rest_client_requests_total" {
			v, _ := strconv.ParseFloat(fields[0], 64)
			s.requests[label(labels, "method")] += v
		}
		return
	}
	v, _ := strconv.ParseFloat(fields[0], 64)
	switch name {
	case "process_resident_memory_bytes":
		s.rssBytes = v
	case "process_cpu_seconds_total":
		s.cpuSecs = v
	case "go_memstats_heap_inuse_bytes":
		s.heapBytes = v
	}
}

func label(labels, key string) string {
	_, after, ok := strings.Cut(labels, key+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, `"`)
	return v
}

// delta is b's requests minus a's, by method.
func delta(a, b sample) map[string]float64 {
	out := map[string]float64{}
	for m, v := range b.requests {
		out[m] = v - a.requests[m]
	}
	return out
}

func writes(d map[string]float64) float64 {
	return d["POST"] + d["PUT"] + d["PATCH"] + d["DELETE"]
}

func byVerb(d map[string]float64, per float64) string {
	var parts []string
	for _, m := range []string{"GET", "LIST", "WATCH", "POST", "PUT", "PATCH", "DELETE"} {
		if v := d[m]; v > 0 {
			parts = append(parts, fmt.Sprintf("%s %.2f", m, v/per))
		}
	}
	return strings.Join(parts, ", ")
}
