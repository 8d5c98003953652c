package importer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// position says where a record is in the body: its line (from 1) and, in
// a JSON array, its index in the array (from 0).
type position struct {
	line  int
	index *int
	// missing are the fields the record's source leaves out (a CSV
	// header's missing columns): an update would clear them.
	missing []string
}

// source yields the records of a body one at a time, holding one record
// in memory whatever the size of the body.
type source interface {
	// next returns the next record and where it starts; io.EOF after the
	// last one. Any other error ends the import where the body became
	// unreadable.
	next() (position, []byte, error)
	// seen counts what was read: lines of JSON Lines, elements of an array.
	seen() int
}

// lineSource reads JSON Lines, skipping blank lines.
type lineSource struct {
	lines *bufio.Scanner
	n     int
}

func newLineSource(body io.Reader, maxLine int) *lineSource {
	lines := bufio.NewScanner(body)
	lines.Buffer(make([]byte, 0, 64<<10), maxLine)
	return &lineSource{lines: lines}
}

func (s *lineSource) next() (position, []byte, error) {
	for s.lines.Scan() {
		s.n++
		if err := s.lines.Err(); err != nil {
			// The body failed mid-line (it stopped coming, or passed its
			// limit): the Scanner hands over the part it read as a last
			// line, which is not a record.
			return position{line: s.n}, nil, err
		}
		if line := bytes.TrimSpace(s.lines.Bytes()); len(line) > 0 {
			return position{line: s.n}, line, nil
		}
	}
	if err := s.lines.Err(); err != nil {
		s.n++
		return position{line: s.n}, nil, err
	}
	return position{line: s.n}, nil, io.EOF
}

func (s *lineSource) seen() int { return s.n }

// shapeError is a body of valid JSON in a shape the import does not read.
type shapeError string

func (e shapeError) Error() string { return string(e) }

// errNotAnArray is the body of application/json that holds no array of
// referrals where one is looked for.
const errNotAnArray = shapeError(`the body is neither a JSON array of referrals nor an object whose "value" or "items" is that array`)

// arraySource reads a JSON array of referrals, or an object whose "value"
// or "items" is that array (as list APIs return them), with the
// decoder's token API: one element in memory at a time.
type arraySource struct {
	dec    *json.Decoder
	lines  *lineCounter
	budget *rowBudget // of one element: the decoder reads one whole
	inside bool       // the array sits in an object, whose end is still to read
	n      int
}

// errElementTooLong is an element of an array far over the limit of a
// record: the decoder would read it whole, so the import ends there.
var errElementTooLong = errors.New("an element of the array is too long")

// newArraySource reads body up to the first element, so that a body
// that is not an array of referrals is refused before anything is
// imported (errNotAnArray, or the JSON syntax error).
func newArraySource(body io.Reader, maxElement int) (*arraySource, error) {
	// Elements up to 4 times the limit are read and refused one by one;
	// past that the import ends, so that an element of 100 MB is not read
	// whole (the decoder's buffer holds an element and reads ahead up to
	// twice the largest so far).
	budget := &rowBudget{r: body, max: 4 * maxElement, err: errElementTooLong}
	budget.reset()
	lines := &lineCounter{r: budget, line: 1}
	s := &arraySource{dec: json.NewDecoder(lines), lines: lines, budget: budget}
	s.dec.UseNumber()
	tok, err := s.dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('['):
		return s, nil
	case json.Delim('{'):
		s.inside = true
		return s, s.findArray()
	}
	return nil, errNotAnArray
}

// findArray reads the object's members up to "value" or "items" and its '['.
func (s *arraySource) findArray() error {
	for s.dec.More() {
		key, err := s.dec.Token()
		if err != nil {
			return err
		}
		if key != "value" && key != "items" {
			if err := s.dec.Decode(new(json.RawMessage)); err != nil {
				return err
			}
			continue
		}
		if tok, err := s.dec.Token(); err != nil || tok != json.Delim('[') {
			return errors.Join(err, shapeError(fmt.Sprintf("%q is not an array of referrals", key)))
		}
		return nil
	}
	return errNotAnArray
}

func (s *arraySource) next() (position, []byte, error) {
	if !s.dec.More() {
		err := s.end()
		return s.errorAt(err), nil, err
	}
	s.budget.reset()
	var raw json.RawMessage
	if err := s.dec.Decode(&raw); err != nil {
		if err == io.EOF { // the body ended after a comma: cut short
			err = io.ErrUnexpectedEOF
		}
		return s.errorAt(err), nil, err
	}
	index := s.n
	s.n++
	return position{line: s.lines.lineAt(s.dec.InputOffset() - int64(len(raw))), index: &index}, raw, nil
}

// errorAt returns where err was met: where the JSON goes wrong for a
// syntax error, where the decoder stands for anything else.
func (s *arraySource) errorAt(err error) position {
	offset := s.dec.InputOffset()
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) && syntax.Offset > offset {
		offset = syntax.Offset
	}
	return position{line: s.lines.lineAt(offset)}
}

// end reads what follows the array: the rest of its object, then nothing.
// A body that ends before the array or its object does is
// io.ErrUnexpectedEOF.
func (s *arraySource) end() error {
	err := s.close()
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	if err != nil {
		return err
	}
	if _, err := s.dec.Token(); err != io.EOF {
		return shapeError("more JSON follows the array: send one array, or one object, a request")
	}
	return io.EOF
}

// close reads the end of the array and the rest of its object.
func (s *arraySource) close() error {
	if _, err := s.dec.Token(); err != nil { // ']'
		return err
	}
	for s.inside && s.dec.More() {
		if _, err := s.dec.Token(); err != nil {
			return err
		}
		if err := s.dec.Decode(new(json.RawMessage)); err != nil {
			return err
		}
	}
	if s.inside {
		_, err := s.dec.Token() // '}'
		return err
	}
	return nil
}

func (s *arraySource) seen() int { return s.n }

// lineCounter numbers the lines of what the decoder reads: it keeps the
// offsets of the newlines read ahead of the decoder, and drops them as the
// decoder passes them, so it holds no more than the decoder's buffer.
type lineCounter struct {
	r        io.Reader
	read     int64   // bytes read so far
	newlines []int64 // offsets of newlines not yet passed
	line     int     // the line of the last offset asked for, from 1
}

func (c *lineCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for i, b := range p[:n] {
		if b == '\n' {
			c.newlines = append(c.newlines, c.read+int64(i))
		}
	}
	c.read += int64(n)
	return n, err
}

// lineAt returns the line of offset, which must not be before the offset
// last asked for.
func (c *lineCounter) lineAt(offset int64) int {
	passed := 0
	for passed < len(c.newlines) && c.newlines[passed] < offset {
		passed++
	}
	c.newlines = c.newlines[passed:]
	c.line += passed
	return c.line
}
