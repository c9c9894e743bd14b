// rtc-client joins a LiveKit room as a call participant would, for the
// integration tests of the MatrixRTC back end (livekit-server behind nginx).
//
//	rtc-client publish   --url URL --token-file F --seconds N
//	rtc-client subscribe --url URL --token-file F --seconds N [--audio N --video N --from K]
//
// publish sends an Opus audio track and a VP8 video track of synthetic
// samples (real-time paced, every video frame a key frame, so the SFU
// forwards from the first one) for N seconds.
//
// subscribe subscribes to every track of the room and counts the RTP
// packets it receives, per remote participant and kind, for N seconds, or
// until K participants (default 1) each sent at least --audio audio and
// --video video packets.
//
// Both print one JSON object on stdout, as the last line:
//
//	{"identity":"...","room":"...","participants":{"<identity>":{"audio":n,"video":n,"codecs":["audio/opus","video/VP8"]}}}
//
// A failure to join prints {"error":"..."} and exits with status 2; bad
// arguments exit with status 64. The WebSocket URL may be wss:// with a
// certificate from the CA bundle in SSL_CERT_FILE (Go's own lookup).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

type counts struct {
	Audio  int64    `json:"audio"`
	Video  int64    `json:"video"`
	Codecs []string `json:"codecs"`
}

type report struct {
	Identity     string             `json:"identity,omitempty"`
	Room         string             `json:"room,omitempty"`
	Published    []string           `json:"published,omitempty"`
	Participants map[string]*counts `json:"participants"`
	Error        string             `json:"error,omitempty"`
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "publish" && os.Args[1] != "subscribe") {
		fmt.Fprintln(os.Stderr, "usage: rtc-client publish|subscribe --url URL --token-file FILE [--seconds N] [--relay] [--audio N --video N --from K]")
		os.Exit(64)
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	url := fs.String("url", "", "LiveKit WebSocket URL (ws:// or wss://)")
	tokenFile := fs.String("token-file", "", "file holding the LiveKit access token (a token is a credential: never on a command line)")
	seconds := fs.Float64("seconds", 10, "how long to publish, or at most to listen")
	wantAudio := fs.Int64("audio", 0, "subscribe: stop early once --from participants each sent this many audio packets")
	wantVideo := fs.Int64("video", 0, "subscribe: ... and this many video packets")
	from := fs.Int("from", 1, "subscribe: how many remote participants must reach --audio and --video")
	relay := fs.Bool("relay", false, "reach the SFU only through the TURN servers it hands out (ICE transport policy relay), as a client behind a firewall that lets only TLS on 443 out")
	_ = fs.Parse(os.Args[2:])
	if *url == "" || *tokenFile == "" {
		fmt.Fprintln(os.Stderr, "rtc-client: --url and --token-file are required")
		os.Exit(64)
	}
	raw, err := os.ReadFile(*tokenFile)
	if err != nil {
		fail(fmt.Errorf("reading the token: %w", err))
	}
	token := string(trimSpace(raw))

	var mu sync.Mutex
	r := &report{Participants: map[string]*counts{}}
	done := make(chan struct{})
	var doneOnce sync.Once
	reached := func() bool { // with mu held
		if *wantAudio == 0 && *wantVideo == 0 {
			return false
		}
		n := 0
		for _, c := range r.Participants {
			if c.Audio >= *wantAudio && c.Video >= *wantVideo {
				n++
			}
		}
		return n >= *from
	}

	cb := lksdk.NewRoomCallback()
	cb.ParticipantCallback.OnTrackSubscribed = func(track *webrtc.TrackRemote, _ *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		identity := rp.Identity()
		kind := track.Kind()
		mime := track.Codec().MimeType
		mu.Lock()
		c := r.Participants[identity]
		if c == nil {
			c = &counts{Codecs: []string{}}
			r.Participants[identity] = c
		}
		c.Codecs = appendUnique(c.Codecs, mime)
		mu.Unlock()
		go func() {
			for {
				if _, _, err := track.ReadRTP(); err != nil {
					return
				}
				mu.Lock()
				if kind == webrtc.RTPCodecTypeAudio {
					c.Audio++
				} else if kind == webrtc.RTPCodecTypeVideo {
					c.Video++
				}
				if reached() {
					doneOnce.Do(func() { close(done) })
				}
				mu.Unlock()
			}
		}()
	}

	// The SDK's 5 s to connect is short for a loaded 2-core machine, above all through a relay (TURN over TLS).
	opts := []lksdk.ConnectOption{lksdk.WithAutoSubscribe(mode == "subscribe"), lksdk.WithConnectTimeout(30 * time.Second)}
	if *relay {
		opts = append(opts, lksdk.WithICETransportPolicy(webrtc.ICETransportPolicyRelay))
	}
	room, err := lksdk.ConnectToRoomWithToken(*url, token, cb, opts...)
	if err != nil {
		fail(err)
	}
	r.Identity = room.LocalParticipant.Identity()
	r.Room = room.Name()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	if mode == "publish" {
		audio, err := lksdk.NewLocalSampleTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
		if err != nil {
			fail(err)
		}
		video, err := lksdk.NewLocalSampleTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
		if err != nil {
			fail(err)
		}
		if _, err := room.LocalParticipant.PublishTrack(audio, &lksdk.TrackPublicationOptions{Name: "microphone"}); err != nil {
			fail(fmt.Errorf("publishing audio: %w", err))
		}
		if _, err := room.LocalParticipant.PublishTrack(video, &lksdk.TrackPublicationOptions{Name: "camera", VideoWidth: 320, VideoHeight: 240}); err != nil {
			fail(fmt.Errorf("publishing video: %w", err))
		}
		r.Published = []string{webrtc.MimeTypeOpus, webrtc.MimeTypeVP8}
		wg.Add(2)
		go pace(&wg, stop, 20*time.Millisecond, func(d time.Duration) error {
			return audio.WriteSample(media.Sample{Data: opusSilence, Duration: d}, nil)
		})
		frame := vp8KeyFrame(320, 240, 1200)
		go pace(&wg, stop, 33*time.Millisecond, func(d time.Duration) error {
			return video.WriteSample(media.Sample{Data: frame, Duration: d}, nil)
		})
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-time.After(time.Duration(*seconds * float64(time.Second))):
	case <-done:
	case <-sigs:
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	out, _ := json.Marshal(r)
	mu.Unlock()
	room.Disconnect()
	fmt.Println(string(out))
}

// pace calls write every interval (with that duration) until stop closes.
func pace(wg *sync.WaitGroup, stop <-chan struct{}, interval time.Duration, write func(time.Duration) error) {
	defer wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := write(interval); err != nil {
				fmt.Fprintf(os.Stderr, "rtc-client: writing a sample: %v\n", err)
			}
		}
	}
}

// opusSilence is one 20 ms Opus frame: TOC byte 0xf8 (CELT-only, full band,
// 20 ms, one frame) followed by the two bytes encoders emit for silence.
var opusSilence = []byte{0xf8, 0xff, 0xfe}

// vp8KeyFrame is a VP8 frame whose header (RFC 6386, 9.1) marks a key frame
// of width x height: a 3-byte frame tag (key frame, version 0, shown, first
// partition size), the start code 9d 01 2a and the dimensions; the rest is
// filler. The SFU reads only these headers (key frame detection, size).
func vp8KeyFrame(width, height, size int) []byte {
	b := make([]byte, size)
	first := size - 10
	tag := uint32(0) | 0<<1 | 1<<4 | uint32(first)<<5
	b[0], b[1], b[2] = byte(tag), byte(tag>>8), byte(tag>>16)
	b[3], b[4], b[5] = 0x9d, 0x01, 0x2a
	b[6], b[7] = byte(width), byte(width>>8)
	b[8], b[9] = byte(height), byte(height>>8)
	for i := 10; i < size; i++ {
		b[i] = byte(i * 31)
	}
	return b
}

func fail(err error) {
	out, _ := json.Marshal(report{Participants: map[string]*counts{}, Error: err.Error()})
	fmt.Println(string(out))
	os.Exit(2)
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	list = append(list, s)
	sort.Strings(list)
	return list
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
