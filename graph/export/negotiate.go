package export

import (
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// negotiate picks the export's format from the Accept header as RFC 9110
// (section 12.5.1) has it: for each format the most specific media range
// that matches it gives its quality, the better quality wins and CSV
// wins ties. No Accept, */* and text/* get CSV; ok is false when neither
// format is acceptable.
func negotiate(accept []string) (ndjson, ok bool) {
	if strings.TrimSpace(strings.Join(accept, "")) == "" {
		return false, true
	}
	var quality, specificity [2]float64 // of CSV, of JSON Lines
	specificity = [2]float64{-1, -1}
	for _, header := range accept {
		for part := range strings.SplitSeq(header, ",") {
			media, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if v, set := params["q"]; set {
				if q, err = strconv.ParseFloat(v, 64); err != nil {
					continue
				}
			}
			for i, format := range []string{mediaCSV, MediaNDJSON} {
				kind, _, _ := strings.Cut(format, "/")
				var spec float64
				switch media {
				case format:
					spec = 2
				case kind + "/*":
					spec = 1
				case "*/*":
					spec = 0
				default:
					continue
				}
				if spec > specificity[i] {
					specificity[i], quality[i] = spec, q
				}
			}
		}
	}
	if quality[0] <= 0 && quality[1] <= 0 {
		return false, false
	}
	return quality[1] > quality[0], true
}

// attachment sets the download headers of an export. The connection
// closes after it: the write deadline that bounds the export's last bytes
// (pacedWriter) stays on the connection, where it would fail a later
// response.
func attachment(w http.ResponseWriter, media, ext string) {
	w.Header().Set("Connection", "close")
	w.Header().Set("Content-Type", media)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="referrals-%s.%s"`, time.Now().UTC().Format("20060102T150405Z"), ext))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
}
