// Package repocheck checks that the repository stands on its own: no file
// refers to a document outside it (the shared design notes it was planned
// from, by path or as a "DESIGN" citation), and every relative link of its
// Markdown pages leads to a file of the repository and, when it names one, to
// a heading that exists. Its test runs these checks over the files git
// tracks, so that a clone holds everything its code and docs cite.
package repocheck

import (
	"bytes"
	"fmt"
	"iter"
	"net/url"
	"os/exec"
	"path"
	"regexp"
	"strings"
	"unicode"
)

// Finding is one problem at one line of a file.
type Finding struct {
	File    string // slash-separated, relative to the repository root
	Line    int    // 1-based
	Problem string
}

func (f Finding) String() string { return fmt.Sprintf("%s:%d: %s", f.File, f.Line, f.Problem) }

// outsidePatterns are the ways a file has referred to documents that live
// outside the repository: the shared folder by relative or absolute path,
// the design and style notes by file name, and "DESIGN" as a citation
// ("DESIGN §3", "DESIGN, Measured"). The contract those citations meant is
// docs/engine-contract.md.
var outsidePatterns = []struct {
	re   *regexp.Regexp
	what string
}{
	{regexp.MustCompile(`\.\./shared\b`), "a path to ../shared, outside the repository"},
	{regexp.MustCompile(`/work/shared\b`), "a path to /work/shared, outside the repository"},
	{regexp.MustCompile(`(?i)\b(design|style)\.md\b`), "a document that is not in the repository"},
	{regexp.MustCompile(`\bDESIGN\b`), `a "DESIGN" citation (cite docs/engine-contract.md or another page of docs/)`},
}

// OutsideReferences returns one finding per line of text that refers to a
// document outside the repository. Binary content (a NUL byte in the first
// 8000 bytes, as git decides) has no references.
func OutsideReferences(file string, text []byte) []Finding {
	if isBinary(text) {
		return nil
	}
	var out []Finding
	for i, line := range strings.Split(string(text), "\n") {
		for _, p := range outsidePatterns {
			if m := p.re.FindString(line); m != "" {
				out = append(out, Finding{file, i + 1, fmt.Sprintf("%q: %s", m, p.what)})
				break
			}
		}
	}
	return out
}

func isBinary(b []byte) bool {
	return bytes.IndexByte(b[:min(len(b), 8000)], 0) >= 0
}

// TrackedFiles lists the files git tracks in the work tree at root, as
// slash-separated paths relative to it.
func TrackedFiles(root string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "-z", "--cached")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files in %s: %w", root, err)
	}
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f != "" {
			files = append(files, f)
		}
	}
	return files, nil
}

// Tree is the set of files links may lead to, with a way to read them.
type Tree struct {
	files map[string]bool
	dirs  map[string]bool
	read  func(file string) ([]byte, error)
}

// NewTree returns the tree of files (slash-separated paths relative to the
// repository root); read returns a file's content, for the headings of
// linked Markdown pages. A folder exists when it holds a file of the tree.
func NewTree(files []string, read func(file string) ([]byte, error)) *Tree {
	t := &Tree{files: map[string]bool{}, dirs: map[string]bool{".": true}, read: read}
	for _, f := range files {
		t.files[f] = true
		for d := path.Dir(f); d != "." && !t.dirs[d]; d = path.Dir(d) {
			t.dirs[d] = true
		}
	}
	return t
}

var (
	// inlineLink finds the target of [text](target "title") and
	// ![alt](target); link text is not parsed, so nested brackets do not matter.
	inlineLink = regexp.MustCompile(`\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)`)
	// referenceDef finds the target of a reference definition: [name]: target
	referenceDef = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)`)
	htmlLink     = regexp.MustCompile(`(?i)<(?:a|img)\s[^>]*?\b(?:href|src)\s*=\s*"([^"]*)"`)
	fence        = regexp.MustCompile("^ {0,3}(```|~~~)")
	codeSpan     = regexp.MustCompile("`+[^`]*`+")
	scheme       = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
)

// BrokenLinks returns one finding per relative link of the Markdown page doc
// (a path of the tree; text is its content) that leads outside the
// repository, to no file or folder of the tree, or to an anchor that no
// heading of the linked Markdown page defines. Links with a scheme
// (https:, mailto:) are not checked, nor is anything inside code.
func (t *Tree) BrokenLinks(doc string, text []byte) []Finding {
	var out []Finding
	for _, l := range markdownLinks(text) {
		if problem := t.checkLink(doc, l.target); problem != "" {
			out = append(out, Finding{doc, l.line, fmt.Sprintf("link %q: %s", l.target, problem)})
		}
	}
	return out
}

type link struct {
	line   int
	target string
}

// proseLines yields the lines of a Markdown page in order, indexed from 0,
// leaving out those of fenced code blocks (and the fences).
func proseLines(text []byte) iter.Seq2[int, string] {
	return func(yield func(int, string) bool) {
		inFence := ""
		for i, line := range strings.Split(string(text), "\n") {
			if m := fence.FindStringSubmatch(line); m != nil {
				switch {
				case inFence == "":
					inFence = m[1]
				case m[1] == inFence:
					inFence = ""
				}
				continue
			}
			if inFence == "" && !yield(i, line) {
				return
			}
		}
	}
}

// markdownLinks returns the link targets of a Markdown page outside fenced
// code blocks and code spans.
func markdownLinks(text []byte) []link {
	var out []link
	for i, line := range proseLines(text) {
		line = codeSpan.ReplaceAllString(line, "``")
		var targets []string
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			targets = append(targets, m[1])
		}
		if m := referenceDef.FindStringSubmatch(line); m != nil {
			targets = append(targets, m[1])
		}
		for _, m := range htmlLink.FindAllStringSubmatch(line, -1) {
			targets = append(targets, m[1])
		}
		for _, target := range targets {
			out = append(out, link{i + 1, strings.TrimSuffix(strings.TrimPrefix(target, "<"), ">")})
		}
	}
	return out
}

func (t *Tree) checkLink(doc, target string) string {
	if target == "" {
		return "empty target"
	}
	if scheme.MatchString(target) || strings.HasPrefix(target, "//") {
		return ""
	}
	rawPath, anchor, _ := strings.Cut(target, "#")
	file := doc
	if rawPath != "" {
		p, err := url.PathUnescape(rawPath)
		if err != nil {
			return fmt.Sprintf("bad escape: %v", err)
		}
		if strings.HasPrefix(p, "/") {
			file = path.Clean(strings.TrimPrefix(p, "/")) // from the repository root, as GitHub resolves it
		} else {
			file = path.Join(path.Dir(doc), p)
		}
		if file == ".." || strings.HasPrefix(file, "../") {
			return "leads outside the repository"
		}
		if !t.files[file] && !t.dirs[file] {
			return fmt.Sprintf("%s is not a file of the repository (a new file must be added to git)", file)
		}
	}
	if anchor == "" || !strings.HasSuffix(file, ".md") || !t.files[file] {
		return ""
	}
	content, err := t.read(file)
	if err != nil {
		return fmt.Sprintf("read %s: %v", file, err)
	}
	if !Anchors(content)[anchor] {
		return fmt.Sprintf("%s has no heading with anchor #%s", file, anchor)
	}
	return ""
}

var (
	atxHeading   = regexp.MustCompile(`^ {0,3}#{1,6}(?:\s+(.*?))?(?:\s+#+)?\s*$`)
	explicitID   = regexp.MustCompile(`(?i)<a\s[^>]*?\b(?:name|id)\s*=\s*"([^"]+)"`)
	headingLink  = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	headingHTML  = regexp.MustCompile(`<[^>]+>`)
	headingMarks = strings.NewReplacer("`", "", "*", "")
)

// Anchors returns the fragment identifiers a Markdown page defines: one per
// ATX heading, made as GitHub makes them (the heading's text without
// Markdown syntax, lower-cased, every character that is not a letter,
// digit, space, hyphen or underscore dropped, spaces turned into hyphens; a
// repeated anchor gets -1, -2, ...), and every <a name="..."> or id="...".
func Anchors(text []byte) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, line := range proseLines(text) {
		for _, m := range explicitID.FindAllStringSubmatch(line, -1) {
			out[m[1]] = true
		}
		m := atxHeading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		slug := Slug(m[1])
		if n := seen[slug]; n > 0 {
			out[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// Slug is the anchor GitHub gives a heading with this text.
func Slug(heading string) string {
	text := headingLink.ReplaceAllString(heading, "$1")
	text = headingHTML.ReplaceAllString(text, "")
	text = headingMarks.Replace(text)
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(text)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.M, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
