package health

import (
	"errors"
	"net"
	"os"
	"strings"
)

// causeText is the innermost message of a network error ("connection
// refused", "i/o timeout"), without addresses.
func causeText(err error) string {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err.Error()
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return causeText(oe.Err)
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

// netErr gives a network error a short step name ("read", "write").
func netErr(step string, err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &stepError{step: step, msg: "timeout", err: err}
	}
	return &stepError{step: step, msg: causeText(err), err: err}
}

// stepError is a check failure with a short, address-free message.
type stepError struct {
	step, msg string
	err       error
}

func (e *stepError) Error() string { return e.step + ": " + e.msg }
func (e *stepError) Unwrap() error { return e.err }
