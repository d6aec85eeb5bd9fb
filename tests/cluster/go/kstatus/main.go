// Command kstatus prints the kstatus (status and message, as JSON) of the Kubernetes object
// given as JSON on stdin: the rules of sigs.k8s.io/cli-utils that kubectl, Flux and kpt use.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	var object unstructured.Unstructured
	// The API machinery's decoder: integers stay int64, as kstatus expects.
	if err := object.UnmarshalJSON(data); err != nil {
		fail(err)
	}
	result, err := status.Compute(&object)
	if err != nil {
		fail(err)
	}
	out, err := json.Marshal(map[string]string{"status": string(result.Status), "message": result.Message})
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kstatus:", err)
	os.Exit(2)
}
