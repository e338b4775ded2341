package cloudflare

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"mime/multipart"
	"net/textproto"
	"slices"

	cf "github.com/cloudflare/cloudflare-go/v4"
	"github.com/cloudflare/cloudflare-go/v4/workers"

	"github.com/dynamic-workers/gateway/worker"
)

// workerLoaderBinding is the binding type of env.LOADER. cloudflare-go v4
// has no constant for it; the string marshals as the API expects.
const workerLoaderBinding = workers.ScriptUpdateParamsMetadataBindingsType("worker_loader")

// versionMetadataBinding is the binding type of env.CF_VERSION_METADATA:
// the version's id, which the shim's /verify answers with.
const versionMetadataBinding = workers.ScriptUpdateParamsMetadataBindingsType("version_metadata")

// upload is the multipart body of a module Worker upload.
type upload struct {
	body        []byte
	contentType string
	metadata    workers.ScriptUpdateParamsMetadata
	parts       []uploadPart
}

type uploadPart struct {
	Name        string
	ContentType string
	Size        int
}

// buildUpload assembles the shim's upload: a metadata part (main module,
// compatibility date and flags, global_fetch_strictly_public among them
// (wrangler.jsonc says why), the LOADER and SHIM_SECRET bindings,
// SHIM_SECRET_PREVIOUS if previous is set, and a binding per capability
// reached through a Workers VPC service (vpc: capability name to service
// id)) and one part per module. The
// upload replaces the script's bindings, so a deploy without previous drops
// a SHIM_SECRET_PREVIOUS left from a rotation. cloudflare-go v4.6.0's
// Scripts.Update sends JSON only, so the multipart body is built here and
// passed with option.WithRequestBody.
func buildUpload(secret, previous string, vpc map[string]string) (*upload, error) {
	date, err := worker.CompatibilityDate()
	if err != nil {
		return nil, err
	}
	flags, err := worker.CompatibilityFlags()
	if err != nil {
		return nil, err
	}
	u := &upload{metadata: workers.ScriptUpdateParamsMetadata{
		MainModule:         cf.F(worker.Modules[0].Name),
		CompatibilityDate:  cf.F(date),
		CompatibilityFlags: cf.F(flags),
		Bindings:           cf.F(bindings(secret, previous, vpc)),
	}}
	meta, err := u.metadata.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := writePart(mw, "metadata", "", "application/json", meta); err != nil {
		return nil, err
	}
	for _, m := range worker.Modules {
		data, err := worker.Files.ReadFile(m.Path)
		if err != nil {
			return nil, err
		}
		ct, err := uploadContentType(m.Kind)
		if err != nil {
			return nil, fmt.Errorf("shim module %s: %w", m.Name, err)
		}
		if err := writePart(mw, m.Name, m.Name, ct, data); err != nil {
			return nil, err
		}
		u.parts = append(u.parts, uploadPart{Name: m.Name, ContentType: ct, Size: len(data)})
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	u.body = buf.Bytes()
	u.contentType = mw.FormDataContentType()
	return u, nil
}

// uploadContentType is the part content type that makes the Workers upload
// API load a module of kind k as the shim expects it (as wrangler types
// them); a kind it does not know is an error, never uploaded as JS.
func uploadContentType(k worker.ModuleKind) (string, error) {
	switch k {
	case worker.ModuleES:
		return "application/javascript+module", nil
	case worker.ModuleText:
		return "text/plain", nil
	case worker.ModuleJSON:
		return "application/json", nil
	case worker.ModuleWasm:
		return "application/wasm", nil
	case worker.ModuleData:
		return "application/octet-stream", nil
	}
	return "", fmt.Errorf("no upload content type for module kind %d", k)
}

func writePart(mw *multipart.Writer, name, filename, contentType string, data []byte) error {
	h := textproto.MIMEHeader{}
	disposition := fmt.Sprintf(`form-data; name=%q`, name)
	if filename != "" {
		disposition += fmt.Sprintf(`; filename=%q`, filename)
	}
	h.Set("Content-Disposition", disposition)
	h.Set("Content-Type", contentType)
	w, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// bindings are the shim's: env.LOADER, env.CF_VERSION_METADATA, its
// signing secrets, and env.VPC_<name> for each capability reached through
// a Workers VPC service (vpc: capability name to service id), in name order.
func bindings(secret, previous string, vpc map[string]string) []workers.ScriptUpdateParamsMetadataBindingUnion {
	secretText := func(name, text string) workers.ScriptUpdateParamsMetadataBinding {
		return workers.ScriptUpdateParamsMetadataBinding{
			Name: cf.F(name),
			Type: cf.F(workers.ScriptUpdateParamsMetadataBindingsTypeSecretText),
			Text: cf.F(text),
		}
	}
	b := []workers.ScriptUpdateParamsMetadataBindingUnion{
		workers.ScriptUpdateParamsMetadataBinding{Name: cf.F("LOADER"), Type: cf.F(workerLoaderBinding)},
		workers.ScriptUpdateParamsMetadataBinding{Name: cf.F("CF_VERSION_METADATA"), Type: cf.F(versionMetadataBinding)},
		secretText("SHIM_SECRET", secret),
	}
	if previous != "" {
		b = append(b, secretText("SHIM_SECRET_PREVIOUS", previous))
	}
	for _, name := range slices.Sorted(maps.Keys(vpc)) {
		b = append(b, vpcServiceBinding{name: VPCBinding(name), serviceID: vpc[name]})
	}
	return b
}

// VPCBinding is the name of the shim's binding to capability's Workers VPC
// service: worker.Contract.VPCBindingPrefix, then the capability's name.
func VPCBinding(capability string) string {
	return worker.Contract.VPCBindingPrefix + capability
}

// vpcServiceBinding is a binding to a Workers VPC service, {"type":
// "vpc_service", "service_id": …}, which cloudflare-go v4.6.0 has no
// field for: it takes its place among the metadata's bindings by
// embedding their type, and marshals itself.
type vpcServiceBinding struct {
	workers.ScriptUpdateParamsMetadataBinding
	name, serviceID string
}

func (b vpcServiceBinding) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"name": b.name, "type": "vpc_service", "service_id": b.serviceID})
}
